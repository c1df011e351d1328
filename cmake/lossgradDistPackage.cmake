# lossgrad-dist.pc, the data-parallel module's pkg-config file; included by
# src/CMakeLists.txt when LG_MPI is on, after lossgradPackage.cmake (whose
# relocatable prefix, libdir and includedir it shares).
#
# lossgrad/dist.h includes mpi.h, so MPI's flags are public: Requires names
# the pkg-config module of the MPI the build found, the one whose mpi.h is
# the build's (MPI_C_HEADER_DIR): Open MPI's C module ompi-c (Debian's
# libopenmpi-dev; mpi.pc and mpi-c.pc are Debian's alternatives, which may
# point to another MPI than the one lossgrad_dist was built with), MPICH's
# mpich, or the generic mpi-c. Without one, the flags FindMPI found are
# written as they are (absolute paths of the system's MPI).

set(LG_PC_DIST_REQUIRES "lossgrad = ${PROJECT_VERSION}")
set(LG_PC_DIST_LIBS "")
set(LG_PC_DIST_CFLAGS "")
set(lg_mpi_pc "")
foreach(cand IN ITEMS ompi-c mpich mpi-c)
  string(MAKE_C_IDENTIFIER "LG_MPI_PC_${cand}" lg_cand_prefix)
  pkg_check_modules(${lg_cand_prefix} QUIET ${cand})
  if(${lg_cand_prefix}_FOUND)
    pkg_get_variable(lg_cand_includedir ${cand} includedir)
    set(lg_cand_dirs ${${lg_cand_prefix}_INCLUDE_DIRS} ${lg_cand_includedir})
    if(MPI_C_HEADER_DIR IN_LIST lg_cand_dirs)
      set(lg_mpi_pc ${cand})
      break()
    endif()
  endif()
endforeach()
if(lg_mpi_pc)
  string(APPEND LG_PC_DIST_REQUIRES " ${lg_mpi_pc}")
  message(STATUS "lossgrad: lossgrad-dist.pc requires the pkg-config module ${lg_mpi_pc}")
else()
  foreach(dir IN LISTS MPI_C_INCLUDE_DIRS)
    string(APPEND LG_PC_DIST_CFLAGS " -I${dir}")
  endforeach()
  foreach(def IN LISTS MPI_C_COMPILE_DEFINITIONS)
    string(APPEND LG_PC_DIST_CFLAGS " -D${def}")
  endforeach()
  foreach(lib IN LISTS MPI_C_LIBRARIES)
    string(APPEND LG_PC_DIST_LIBS " ${lib}")
  endforeach()
  message(STATUS "lossgrad: no pkg-config module for this MPI; lossgrad-dist.pc names its files")
endif()

configure_file(${PROJECT_SOURCE_DIR}/cmake/lossgrad-dist.pc.in ${CMAKE_CURRENT_BINARY_DIR}/lossgrad-dist.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/lossgrad-dist.pc DESTINATION ${LG_PC_DESTINATION})
