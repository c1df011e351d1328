# What the installed pkg-config file and CMake package say; included by
# src/CMakeLists.txt after GNUInstallDirs, once the dependencies are found.
#
# lossgrad.pc is relocatable: its prefix is the file's own directory
# (${pcfiledir}) followed by as many ../ as CMAKE_INSTALL_LIBDIR/pkgconfig
# has components (../.. for lib/pkgconfig, ../../.. for
# lib/x86_64-linux-gnu/pkgconfig), and libdir and includedir are written
# relative to it. So `cmake --install build --prefix P` gives a file that
# works at P, and still after P is moved. (An absolute CMAKE_INSTALL_LIBDIR
# or CMAKE_INSTALL_INCLUDEDIR is written as it is; the prefix is then the
# configured one, as in CMake's own package files.)

set(LG_PC_DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(LG_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(LG_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  # pure path arithmetic under a made-up root: lib/pkgconfig -> ../..
  file(RELATIVE_PATH lg_pc_up "/lg-prefix/${LG_PC_DESTINATION}" "/lg-prefix")
  string(REGEX REPLACE "/$" "" lg_pc_up "${lg_pc_up}")
  set(LG_PC_PREFIX "\${pcfiledir}/${lg_pc_up}")
  set(LG_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(LG_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(LG_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# A static lossgrad needs its private dependencies on the consumer's link
# line (pkg-config --static, and the CMake package's find_dependency); a
# shared one records them itself (DT_NEEDED), so then there are none and
# neither route asks for OpenBLAS's, cJSON's or OpenMP's development files.
get_target_property(lg_type lossgrad TYPE)
set(LG_PC_REQUIRES_PRIVATE "")
set(LG_PC_LIBS_PRIVATE "")
set(LG_CONFIG_STATIC OFF)
set(LG_CONFIG_OPENBLAS_PKGCONFIG OFF)
set(LG_CONFIG_OPENBLAS_PTHREAD_PC OFF)
set(LG_CONFIG_OPENMP OFF)
if(lg_type STREQUAL "STATIC_LIBRARY")
  set(LG_CONFIG_STATIC ON)
  if(OPENBLAS_FOUND)
    # pkg-config finds openblas.pc where it finds it for any program (the
    # pthread build's directory first when it has one, as the build did;
    # either build links, they share one soname)
    set(LG_CONFIG_OPENBLAS_PKGCONFIG ON)
    string(APPEND LG_PC_REQUIRES_PRIVATE " openblas")
    if(EXISTS "${LG_OPENBLAS_PTHREAD_PC}/openblas.pc")
      set(LG_CONFIG_OPENBLAS_PTHREAD_PC ON)
    endif()
  else()
    foreach(lib IN LISTS BLAS_LIBRARIES)
      string(APPEND LG_PC_LIBS_PRIVATE " ${lib}")
    endforeach()
  endif()
  string(APPEND LG_PC_REQUIRES_PRIVATE " libcjson")
  string(APPEND LG_PC_LIBS_PRIVATE " -pthread -lm")
  string(STRIP "${LG_PC_REQUIRES_PRIVATE}" LG_PC_REQUIRES_PRIVATE)
  string(STRIP "${LG_PC_LIBS_PRIVATE}" LG_PC_LIBS_PRIVATE)
endif()

configure_file(${PROJECT_SOURCE_DIR}/cmake/lossgrad.pc.in ${CMAKE_CURRENT_BINARY_DIR}/lossgrad.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/lossgrad.pc DESTINATION ${LG_PC_DESTINATION})
