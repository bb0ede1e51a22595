/* fastact/_gelu_f64_fvundef.h -- forgets the vector layer defined before each
 * inclusion of _gelu_f64_far.h (no include guard) */
#undef FV_T
#undef FV_N
#undef FV_SFX
#undef FV_ATTR
#undef FV_SET1
#undef FV_ADD
#undef FV_SUB
#undef FV_MUL
#undef FV_DIV
#undef FV_XOR
#undef FV_ANDNOT
#undef FV_LOADU
#undef FV_STOREU
#undef FV_FMA
#undef FV_FMS
#undef FV_LTSEL
#undef FV_SHL52
