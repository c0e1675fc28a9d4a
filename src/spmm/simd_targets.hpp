// simd_targets.hpp: the Highway targets that sdnn compiles no kernel for. Every file that compiles
// code for every target (foreach_target.h) includes it first, so that the kernel and the peak
// benchmark that measures it offer the same targets.
//
// AArch64 compiles NEON and the SVE targets (SVE, SVE2, SVE_256, SVE2_128). RVV is left out: its
// vectors are sizeless like SVE's, which the kernel allows for (with_registers), but no RISC-V
// compiler or emulator has tried it, so RISC-V runs the portable target. SSSE3 is left out too:
// only x86 CPUs of 2006-2008 have it without SSE4 (they run the portable target), and it was a
// fifth of the kernel's compile time in every build. A build may still set its own list with
// -DHWY_DISABLED_TARGETS=...
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_RVV | HWY_SSSE3)
#endif
