// Example firmware: runs the model on the test examples in examples.h and prints what it computed.
//
// Per example one line: the top output (a classifier's class), the values model_predict returned, the SysTick
// ticks the prediction took, and the int8 input and output tensors in hex (what the export's tests compare with
// LiteRT byte for byte). On QEMU with -icount shift=0 a tick is 40 instructions (SysTick runs on the 25 MHz
// processor clock, one instruction per virtual nanosecond); on a board with CLKSOURCE = processor clock, a tick is
// a cycle. Replace examples.h by your sensor's samples to run the model on them.
#include <stdio.h>

#include "examples.h"
#include "model.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"

namespace {

#if defined(__ARM_ARCH) && !defined(MODEL_NO_SYSTICK)
volatile uint32_t* const systick_control = reinterpret_cast<volatile uint32_t*>(0xE000E010u);
volatile uint32_t* const systick_reload = reinterpret_cast<volatile uint32_t*>(0xE000E014u);
volatile uint32_t* const systick_current = reinterpret_cast<volatile uint32_t*>(0xE000E018u);
constexpr uint32_t kSysTickMask = 0xFFFFFFu;  // a 24-bit down-counter

void start_systick() {
  *systick_reload = kSysTickMask;
  *systick_current = 0;
  *systick_control = 5;  // enable, processor clock, no interrupt
}
uint32_t systick_now() { return *systick_current; }
uint32_t ticks_since(uint32_t start) { return (start - systick_now()) & kSysTickMask; }
#else
void start_systick() {}
uint32_t systick_now() { return 0; }
uint32_t ticks_since(uint32_t) { return 0; }
#endif

void print_line(const char* text) { fputs(text, stdout); }

void print_hex(const char* label, const int8_t* values, int count) {
  printf(" %s=", label);
  for (int i = 0; i < count; ++i) printf("%02x", static_cast<unsigned>(static_cast<uint8_t>(values[i])));
}

}  // namespace

int main() {
  RegisterDebugLogCallback(print_line);
  const int status = model_init();
  if (status != 0) {
    printf("model_init failed: %d\n", status);
    return 1;
  }
  printf("model: %d operator kinds, arena %u bytes used of %u\n", MODEL_OPERATOR_KINDS,
         static_cast<unsigned>(model_arena_used_bytes()), static_cast<unsigned>(MODEL_ARENA_BYTES));
  start_systick();
  float out[MODEL_OUTPUTS];
  static int8_t input[MODEL_FEATURES];
  for (int example = 0; example < MODEL_EXAMPLE_COUNT; ++example) {
    // model_predict(raw, out) in its two steps, to keep a copy of the input tensor for the line printed below.
    const uint32_t start = systick_now();
    int result = model_prepare(model_examples[example]);
    uint32_t ticks = ticks_since(start);
    for (int i = 0; i < MODEL_FEATURES; ++i) input[i] = model_input_tensor()[i];
    const uint32_t resumed = systick_now();
    if (result == 0) result = model_invoke(out);
    ticks += ticks_since(resumed);
    if (result != 0) {
      printf("example %d: model_predict failed: %d\n", example, result);
      return 1;
    }
    int top = 0;
    for (int k = 1; k < MODEL_OUTPUTS; ++k) {
      if (out[k] > out[top]) top = k;
    }
    printf("example %d: top=%d (%s) ticks=%lu values=", example, top, model_output_names[top],
           static_cast<unsigned long>(ticks));
    for (int k = 0; k < MODEL_OUTPUTS; ++k) printf("%s%.9g", k ? "," : "", static_cast<double>(out[k]));
#if MODEL_TASK_ANOMALY
    printf(" anomaly=%d", model_is_anomaly(out[0]));
#endif
    print_hex("input", input, MODEL_FEATURES);
    print_hex("output", model_output_tensor(), MODEL_OUTPUTS);
    printf("\n");
  }
  printf("done: %d examples\n", MODEL_EXAMPLE_COUNT);
  return 0;
}
