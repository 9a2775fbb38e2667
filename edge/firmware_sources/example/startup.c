// The two words a Cortex-M reads at reset, placed at address 0 by the Makefile (--section-start=.vectors=0): the
// initial stack pointer and the reset handler, which turns on the FPU (a Cortex-M4F starts with it off) and calls
// newlib's _start (which sets up the C runtime and calls main). Enough for QEMU's mps2-an386; on a board, use the
// vendor's startup file and linker script instead of this one.
#include <stdint.h>

extern void _start(void);

#define MODEL_STACK_TOP 0x20400000u                                  // the end of the board's SRAM at 0x20000000
#define MODEL_CPACR (*(volatile uint32_t*)0xE000ED88u)               // coprocessor access control
#define MODEL_FPU_FULL_ACCESS (0xFu << 20)                           // CP10 and CP11: the single-precision FPU

static void model_reset(void) {
#if defined(__ARM_FP)
  MODEL_CPACR |= MODEL_FPU_FULL_ACCESS;
  __asm volatile("dsb\n\tisb");
#endif
  _start();
}

__attribute__((section(".vectors"), used)) void (*const model_vector_table[2])(void) = {
    (void (*)(void))MODEL_STACK_TOP,
    model_reset,
};
