/* instantiate.h: includes the kernel template LGC_TEMPLATE (a path from
 * src/core, as "../autograd/unary_kernel.h") twice, with T float and
 * FN(name) name_f32, then T double and FN(name) name_f64, and undefines
 * all three. A template written for T and FN is then one function per
 * element type, visible to grep (FN(name) is name_f32 / name_f64), gdb and
 * clang-format. No include guard: included once per template. */
#define T float
#define FN(name) name##_f32
#include LGC_TEMPLATE
#undef T
#undef FN
#define T double
#define FN(name) name##_f64
#include LGC_TEMPLATE
#undef T
#undef FN
#undef LGC_TEMPLATE
