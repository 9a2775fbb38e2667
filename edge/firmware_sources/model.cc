// The model on TFLite Micro: interpreter, operators, tensor arena, and model_predict around the front end.
#include "model.h"

#include <new>

#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

using Resolver = tflite::MicroMutableOpResolver<MODEL_OPERATOR_KINDS>;

alignas(16) uint8_t tensor_arena[MODEL_ARENA_BYTES];
alignas(Resolver) uint8_t resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* interpreter = nullptr;
#if !MODEL_FRONT_END_NONE
float features[MODEL_FEATURES];  // what the front end computes from a raw example, before quantization
#endif

int elements(const TfLiteTensor* tensor) {
  int count = 1;
  for (int i = 0; i < tensor->dims->size; ++i) count *= tensor->dims->data[i];
  return count;
}

}  // namespace

extern "C" int model_init(void) {
  const tflite::Model* model = tflite::GetModel(model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return MODEL_ERROR_SCHEMA;
  Resolver* resolver = new (resolver_storage) Resolver();
  MODEL_ADD_OPERATORS(*resolver);
  interpreter = new (interpreter_storage) tflite::MicroInterpreter(model, *resolver, tensor_arena, MODEL_ARENA_BYTES);
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    interpreter = nullptr;
    return MODEL_ERROR_ALLOCATE;
  }
  const TfLiteTensor* input = interpreter->input(0);
  const TfLiteTensor* output = interpreter->output(0);
  if (input->type != kTfLiteInt8 || output->type != kTfLiteInt8 || elements(input) != MODEL_FEATURES ||
      elements(output) != MODEL_OUTPUTS) {
    interpreter = nullptr;
    return MODEL_ERROR_SHAPE;
  }
  return 0;
}

extern "C" int model_prepare(const model_raw_t* raw) {
  if (interpreter == nullptr) return MODEL_ERROR_NOT_READY;
#if MODEL_FRONT_END_NONE
  model_quantize_input(raw, interpreter->input(0)->data.int8);  // the raw values are the features
#else
  model_front_end(raw, features);
  model_quantize_input(features, interpreter->input(0)->data.int8);
#endif
  return 0;
}

extern "C" int model_invoke(float* out) {
  if (interpreter == nullptr) return MODEL_ERROR_NOT_READY;
  if (interpreter->Invoke() != kTfLiteOk) return MODEL_ERROR_INVOKE;
  model_output_values(interpreter->output(0)->data.int8, out);
  return 0;
}

extern "C" int model_predict(const model_raw_t* raw, float* out) {
  const int status = model_prepare(raw);
  return status != 0 ? status : model_invoke(out);
}

extern "C" size_t model_arena_used_bytes(void) { return interpreter == nullptr ? 0 : interpreter->arena_used_bytes(); }

extern "C" const int8_t* model_input_tensor(void) {
  return interpreter == nullptr ? nullptr : interpreter->input(0)->data.int8;
}

extern "C" const int8_t* model_output_tensor(void) {
  return interpreter == nullptr ? nullptr : interpreter->output(0)->data.int8;
}
