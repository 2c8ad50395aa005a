// Node bindings: convert between JS values and the engine's Runtime. No math here.
#include <napi.h>

#include <cstring>
#include <memory>
#include <thread>

#include "core/error.h"
#include "core/gpu.h"
#include "core/parallel.h"
#include "dist/nccl.h"
#include "dist/nccl_api.h"
#include "dist/shared_memory.h"
#include "train/memory.h"
#include "train/runtime.h"

namespace {

using ml::Runtime;

int64_t get_int(const Napi::Object& obj, const char* key) {
  const Napi::Value v = obj.Get(key);
  if (!v.IsNumber()) throw ml::Error(std::string("native config: '") + key + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}

double get_double(const Napi::Object& obj, const char* key) {
  const Napi::Value v = obj.Get(key);
  if (!v.IsNumber()) throw ml::Error(std::string("native config: '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::string get_string(const Napi::Object& obj, const char* key) {
  const Napi::Value v = obj.Get(key);
  if (!v.IsString()) throw ml::Error(std::string("native config: '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool get_bool(const Napi::Object& obj, const char* key) {
  const Napi::Value v = obj.Get(key);
  if (!v.IsBoolean()) throw ml::Error(std::string("native config: '") + key + "' must be true or false");
  return v.As<Napi::Boolean>().Value();
}

ml::FfnKind get_ffn_kind(const Napi::Object& obj, const char* key) {
  const std::string kind = get_string(obj, key);
  if (kind == "gelu") return ml::FfnKind::Gelu;
  if (kind == "swiglu") return ml::FfnKind::SwiGLU;
  if (kind == "geglu") return ml::FfnKind::GeGLU;
  throw ml::Error(std::string("native config: '") + key + "' must be 'gelu', 'swiglu' or 'geglu', got '" + kind + "'");
}

// layers: the parsed pattern, one array of kind letters per layer (kernel/src/models/pattern.ts).
std::vector<ml::LayerSpec> get_layers(const Napi::Object& obj) {
  const Napi::Value v = obj.Get("layers");
  if (!v.IsArray()) throw ml::Error("native config: 'layers' must be an array of layers (arrays of kinds)");
  const Napi::Array layers = v.As<Napi::Array>();
  std::vector<ml::LayerSpec> out;
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    const Napi::Value layer = layers.Get(i);
    if (!layer.IsArray()) throw ml::Error("native config: layers[" + std::to_string(i) + "] must be an array of kinds");
    const Napi::Array kinds = layer.As<Napi::Array>();
    ml::LayerSpec spec;
    for (uint32_t j = 0; j < kinds.Length(); ++j) {
      const std::string kind = kinds.Get(j).ToString().Utf8Value();
      if (kind.size() != 1) throw ml::Error("native config: layer kinds are single letters, got '" + kind + "'");
      spec.push_back(kind[0]);
    }
    out.push_back(std::move(spec));
  }
  return out;
}

// The TypeScript ModelConfig (kernel/src/models/config.ts), field names and all.
ml::ModelConfig parse_config(const Napi::Object& c) {
  ml::ModelConfig cfg;
  cfg.vocab_size = get_int(c, "vocabSize");
  cfg.pad_vocab_multiple = get_int(c, "padVocabMultiple");
  cfg.d_model = get_int(c, "dModel");
  cfg.layers = get_layers(c);
  cfg.norm_eps = get_double(c, "normEps");
  cfg.seed = uint64_t(get_int(c, "seed"));
  cfg.mamba.d_model = cfg.d_model;
  cfg.mamba.d_state = get_int(c, "dState");
  cfg.mamba.d_conv = get_int(c, "dConv");
  cfg.mamba.expand = get_int(c, "expand");
  const bool auto_rank = c.Get("dtRank").IsString() && get_string(c, "dtRank") == "auto";
  cfg.mamba.dt_rank = auto_rank ? 0 : get_int(c, "dtRank");  // 0: ceil(d_model / 16)
  cfg.mamba.dt_min = get_double(c, "dtMin");
  cfg.mamba.dt_max = get_double(c, "dtMax");
  cfg.mamba.dt_init_floor = get_double(c, "dtInitFloor");
  cfg.mlp.kind = get_ffn_kind(c, "mlpKind");
  cfg.mlp.hidden = get_int(c, "dFF");
  cfg.moe.num_experts = get_int(c, "numExperts");
  cfg.moe.expert.kind = get_ffn_kind(c, "expertKind");
  cfg.moe.expert.hidden = get_int(c, "expertHidden");
  const std::string router = get_string(c, "router");
  if (router != "switch" && router != "sinkhorn")
    throw ml::Error("native config: 'router' must be 'switch' or 'sinkhorn'");
  cfg.moe.router.kind = router == "switch" ? ml::RouterKind::Switch : ml::RouterKind::Sinkhorn;
  cfg.moe.router.top_k = get_int(c, "topK");
  // 'dropless', or a positive factor (the engine's 0 means dropless).
  const bool dropless = c.Get("capacityFactor").IsString() && get_string(c, "capacityFactor") == "dropless";
  cfg.moe.router.capacity_factor = dropless ? 0.0 : get_double(c, "capacityFactor");
  cfg.moe.router.aux_weight = get_double(c, "auxLossWeight");
  cfg.moe.router.sinkhorn_tol = get_double(c, "sinkhornTol");
  cfg.moe.router.sinkhorn_max_iter = get_int(c, "sinkhornMaxIter");
  cfg.moe.router_bias = get_bool(c, "routerBias");
  cfg.attention.heads = get_int(c, "nHeads");
  cfg.attention.kv_heads = get_int(c, "nKvHeads");
  cfg.attention.rope = get_bool(c, "rope");
  cfg.attention.rope_theta = get_double(c, "ropeTheta");
  cfg.max_positions = get_int(c, "maxPositions");
  const std::string final_norm = get_string(c, "finalNorm");
  if (final_norm != "rmsnorm" && final_norm != "layernorm")
    throw ml::Error("native config: 'finalNorm' must be 'rmsnorm' or 'layernorm', got '" + final_norm + "'");
  cfg.final_norm = final_norm == "layernorm" ? ml::NormKind::LayerNorm : ml::NormKind::RmsNorm;
  return cfg;
}

// The optional third argument of new Model: { device, precision, deterministic, cudaGraphs }.
ml::RuntimeOptions parse_options(const Napi::Value& value) {
  ml::RuntimeOptions options;
  if (value.IsUndefined()) return options;
  if (!value.IsObject()) throw ml::Error("new Model: options must be an object { device, precision, deterministic }");
  const Napi::Object o = value.As<Napi::Object>();
  if (o.Has("device")) {
    const std::string device = o.Get("device").ToString().Utf8Value();
    if (device != "cpu" && device != "cuda") throw ml::Error("options.device must be 'cpu' or 'cuda', got '" + device + "'");
    options.device = device == "cuda" ? ml::Device::Cuda : ml::Device::Cpu;
  }
  if (o.Has("precision")) {
    const std::string precision = o.Get("precision").ToString().Utf8Value();
    if (precision != "bf16" && precision != "fp32")
      throw ml::Error("options.precision must be 'bf16' or 'fp32', got '" + precision + "'");
    options.precision = precision == "fp32" ? ml::Precision::FP32 : ml::Precision::BF16;
  }
  if (o.Has("deterministic")) options.deterministic = o.Get("deterministic").ToBoolean().Value();
  if (o.Has("cudaGraphs")) options.cuda_graphs = o.Get("cudaGraphs").ToBoolean().Value();
  return options;
}

ml::Slot parse_slot(const std::string& s) {
  if (s == "value") return ml::Slot::Value;
  if (s == "grad") return ml::Slot::Grad;
  if (s == "adam_m") return ml::Slot::FirstMoment;
  if (s == "adam_v") return ml::Slot::SecondMoment;
  throw ml::Error("slot: expected value, grad, adam_m or adam_v; got '" + s + "'");
}

uint8_t* bytes_of(const Napi::TypedArray& array) {
  return static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
}

Napi::Object metrics_object(Napi::Env env, const ml::StepMetrics& m) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", m.loss);
  out.Set("auxLoss", m.aux_loss);
  out.Set("gradNorm", m.grad_norm);
  Napi::Array experts = Napi::Array::New(env, m.experts.size());
  for (size_t l = 0; l < m.experts.size(); ++l) {
    Napi::Object layer = Napi::Object::New(env);
    Napi::Array counts = Napi::Array::New(env, m.experts[l].counts.size());
    for (size_t e = 0; e < m.experts[l].counts.size(); ++e) counts.Set(uint32_t(e), double(m.experts[l].counts[e]));
    layer.Set("counts", counts);
    layer.Set("dropped", double(m.experts[l].dropped));
    experts.Set(uint32_t(l), layer);
  }
  out.Set("experts", experts);
  out.Set("cudaGraph", m.cuda_graph);
  out.Set("skipped", m.skipped);
  return out;
}

Napi::Array shape_array(Napi::Env env, const ml::Shape& shape) {
  Napi::Array out = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) out.Set(uint32_t(i), Napi::Number::New(env, double(shape[i])));
  return out;
}

// Runs one engine call on libuv's thread pool and settles a promise with its result,
// so the JS event loop stays free while a step runs.
class Job final : public Napi::AsyncWorker {
 public:
  using Work = std::function<Napi::Value(Napi::Env)>;  // builds the JS result after the work
  Job(Napi::Env env, std::shared_ptr<Runtime> runtime, std::function<void()> work, Work result)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), runtime_(std::move(runtime)),
        work_(std::move(work)), result_(std::move(result)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    runtime_->release();
    deferred_.Resolve(result_(Env()));
  }
  void OnError(const Napi::Error& e) override {
    runtime_->release();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Runtime> runtime_;
  std::function<void()> work_;
  Work result_;
};

class Model final : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod("parameters", &Model::Parameters), InstanceMethod("read", &Model::Read),
                        InstanceMethod("write", &Model::Write), InstanceMethod("evaluate", &Model::Evaluate),
                        InstanceMethod("lossAndGradients", &Model::LossAndGradients),
                        InstanceMethod("trainStep", &Model::TrainStep),
                        InstanceMethod("parallelLogits", &Model::ParallelLogits),
                        InstanceMethod("generateStart", &Model::GenerateStart),
                        InstanceMethod("generateNext", &Model::GenerateNext),
                        InstanceMethod("generateFeed", &Model::GenerateFeed),
                        InstanceMethod("joinRanks", &Model::JoinRanks),
                        InstanceMethod("fromRankZero", &Model::FromRankZero),
                        InstanceMethod("dispose", &Model::Dispose),
                        InstanceAccessor("dtype", &Model::DType, nullptr),
                        InstanceAccessor("stepsDone", &Model::StepsDone, &Model::SetStepsDone),
                        InstanceAccessor("optimizerStateBytes", &Model::OptimizerStateBytes, nullptr),
                        InstanceAccessor("parameterMemory", &Model::ParameterMemory, nullptr)});
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    guard(info.Env(), [&] {
      if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsString())
        throw ml::Error("new Model(config, dtype, options?): expected a config object and a dtype string");
      runtime_ = ml::make_runtime(parse_config(info[0].As<Napi::Object>()),
                                  ml::parse_dtype(info[1].As<Napi::String>().Utf8Value()), parse_options(info[2]));
    });
  }

 private:
  template <typename F>
  static auto guard(Napi::Env env, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  // The runtime, or the error a disposed model's calls end with.
  Runtime& live(Napi::Env env) const {
    if (!runtime_)
      throw Napi::Error::New(env, "model: disposed (model.dispose() freed its memory); create or load the model again");
    return *runtime_;
  }

  void acquire(Napi::Env env) {
    if (!live(env).try_acquire())
      throw Napi::Error::New(env, "model is busy: another call on it is still running (await it first)");
  }

  // Holds the busy flag for the duration of a synchronous call.
  template <typename F>
  auto exclusive(Napi::Env env, F&& f) -> decltype(f()) {
    acquire(env);
    struct Release {
      Runtime& r;
      ~Release() { r.release(); }
    } release{*runtime_};
    return guard(env, f);
  }

  Napi::Value DType(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), dtype_name(live(info.Env()).dtype()));
  }
  Napi::Value StepsDone(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(live(info.Env()).steps_done()));
  }

  // dispose(): frees the model's weights, optimizer state and activations now (on CUDA into
  // the allocator's cache, for the next model), not when the garbage collector gets to it.
  // Idempotent; refused while a call is running.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (!runtime_) return info.Env().Undefined();
    acquire(info.Env());
    runtime_->release();
    runtime_.reset();
    return info.Env().Undefined();
  }
  void SetStepsDone(const Napi::CallbackInfo& info, const Napi::Value& value) {
    exclusive(info.Env(), [&] { runtime_->set_steps_done(value.As<Napi::Number>().Int64Value()); });
  }

  Napi::Value Parameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto params = exclusive(env, [&] { return runtime_->params(); });
    Napi::Array out = Napi::Array::New(env, params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", params[i].name);
      p.Set("shape", shape_array(env, params[i].shape));
      p.Set("fileShape", shape_array(env, params[i].file_shape));
      p.Set("weightDecay", params[i].weight_decay);
      out.Set(uint32_t(i), p);
    }
    return out;
  }

  // read(name, slot, out: Float32Array | Float64Array)
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [name, slot, array] = buffer_args(info);
    exclusive(env, [&] { runtime_->read(name, slot, bytes_of(array), array.ByteLength()); });
    return env.Undefined();
  }

  // write(name, slot, values: Float32Array | Float64Array)
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [name, slot, array] = buffer_args(info);
    exclusive(env, [&] { runtime_->write(name, slot, bytes_of(array), array.ByteLength()); });
    return env.Undefined();
  }

  std::tuple<std::string, ml::Slot, Napi::TypedArray> buffer_args(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsTypedArray())
      throw Napi::TypeError::New(env, "expected (name: string, slot: string, array: TypedArray)");
    Napi::TypedArray array = info[2].As<Napi::TypedArray>();
    const auto want = live(env).dtype() == ml::DType::F32 ? napi_float32_array : napi_float64_array;
    if (array.TypedArrayType() != want)
      throw Napi::TypeError::New(env, std::string("expected a ") +
                                          (want == napi_float32_array ? "Float32Array" : "Float64Array") +
                                          " for a " + dtype_name(runtime_->dtype()) + " model");
    const ml::Slot slot = guard(env, [&] { return parse_slot(info[1].As<Napi::String>().Utf8Value()); });
    return {info[0].As<Napi::String>().Utf8Value(), slot, array};
  }

  struct Batch {
    std::vector<int32_t> tokens;
    int64_t batch, len_plus_one;
  };

  // (tokens: Int32Array, batch, lenPlusOne), copied so the JS buffer may go away mid-step.
  static Batch batch_args(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        !info[1].IsNumber() || !info[2].IsNumber())
      throw Napi::TypeError::New(env, "expected (tokens: Int32Array, batch: number, lenPlusOne: number)");
    Napi::Int32Array t = info[0].As<Napi::Int32Array>();
    Batch b{std::vector<int32_t>(t.Data(), t.Data() + t.ElementLength()), info[1].As<Napi::Number>().Int64Value(),
            info[2].As<Napi::Number>().Int64Value()};
    if (b.batch <= 0 || b.len_plus_one < 2 || int64_t(b.tokens.size()) != b.batch * b.len_plus_one)
      throw Napi::RangeError::New(env, "tokens: expected batch × lenPlusOne = " + std::to_string(b.batch) + " × " +
                                           std::to_string(b.len_plus_one) + " values, got " +
                                           std::to_string(b.tokens.size()));
    return b;
  }

  Napi::Value launch(Napi::Env env, std::function<void()> work, Job::Work result) {
    acquire(env);
    auto* job = new Job(env, runtime_, std::move(work), std::move(result));
    Napi::Promise promise = job->promise();
    job->Queue();
    return promise;
  }

  // Runs a Runtime call that takes a batch and returns metrics, as a promise of them.
  using BatchCall = ml::StepMetrics (Runtime::*)(const int32_t*, int64_t, int64_t);
  Napi::Value batch_job(const Napi::CallbackInfo& info, BatchCall call) {
    auto batch = std::make_shared<Batch>(batch_args(info));
    auto metrics = std::make_shared<ml::StepMetrics>();
    auto rt = runtime_;
    return launch(
        info.Env(), [=] { *metrics = ((*rt).*call)(batch->tokens.data(), batch->batch, batch->len_plus_one); },
        [=](Napi::Env env) { return metrics_object(env, *metrics); });
  }

  Napi::Value Evaluate(const Napi::CallbackInfo& info) { return batch_job(info, &Runtime::evaluate); }
  Napi::Value LossAndGradients(const Napi::CallbackInfo& info) { return batch_job(info, &Runtime::loss_and_gradients); }

  // joinRanks({rendezvous, session, rank, world, timeoutS, collective?, shardOptimizer?,
  // expertParallel?}): resolves once every rank has joined; later train steps sum with them.
  // collective: 'shared-memory' (the default, dist/shared_memory.h) or 'nccl' (dist/nccl.h, on
  // this process's GPU: core/gpu.h's cuda_device). shardOptimizer (default false): each rank
  // keeps its share of the optimizer. expertParallel (default false): each rank runs its block of
  // each MoE layer's experts.
  Napi::Value JoinRanks(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject())
      throw Napi::TypeError::New(
          env,
          "joinRanks: expected { rendezvous, session, rank, world, timeoutS, collective?, shardOptimizer?, "
          "expertParallel? }");
    const Napi::Object o = info[0].As<Napi::Object>();
    struct Join {
      std::string rendezvous;
      uint64_t session;
      int rank, world;
      double timeout_s;
      bool nccl, shard_optimizer, expert_parallel;
    };
    const Join j = guard(env, [&] {
      const std::string collective = o.Get("collective").IsUndefined() ? "shared-memory" : get_string(o, "collective");
      if (collective != "shared-memory" && collective != "nccl")
        throw ml::Error("joinRanks: 'collective' must be 'shared-memory' or 'nccl', got '" + collective + "'");
      const Napi::Value shard = o.Get("shardOptimizer");
      if (!shard.IsUndefined() && !shard.IsBoolean()) throw ml::Error("joinRanks: 'shardOptimizer' must be a boolean");
      const bool shard_optimizer = shard.IsBoolean() && shard.As<Napi::Boolean>().Value();
      const Napi::Value experts = o.Get("expertParallel");
      if (!experts.IsUndefined() && !experts.IsBoolean()) throw ml::Error("joinRanks: 'expertParallel' must be a boolean");
      const bool expert_parallel = experts.IsBoolean() && experts.As<Napi::Boolean>().Value();
      return Join{get_string(o, "rendezvous"), uint64_t(get_double(o, "session")), int(get_int(o, "rank")),
                  int(get_int(o, "world")), get_double(o, "timeoutS"), collective == "nccl", shard_optimizer,
                  expert_parallel};
    });
    auto rt = runtime_;
    return launch(
        env,
        [=] {
          rt->join_ranks(j.nccl ? ml::make_nccl_collective(j.rendezvous, j.session, j.rank, j.world, ml::cuda_device(),
                                                           j.timeout_s)
                                : std::make_shared<ml::SharedMemoryCollective>(j.rendezvous, j.session, j.rank,
                                                                               j.world, j.timeout_s),
                         j.shard_optimizer, j.expert_parallel);
        },
        [](Napi::Env env) { return env.Undefined(); });
  }

  // fromRankZero(values: Float64Array): resolves to rank 0's values, on every rank of a joined
  // model (the values themselves before joining). Every rank calls it alike.
  Napi::Value FromRankZero(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw Napi::TypeError::New(env, "fromRankZero(values: Float64Array)");
    const Napi::Float64Array given = info[0].As<Napi::Float64Array>();
    auto values = std::make_shared<std::vector<double>>(given.Data(), given.Data() + given.ElementLength());
    auto rt = runtime_;
    return launch(
        env, [=] { rt->from_rank_zero(values->data(), int64_t(values->size())); },
        [=](Napi::Env env) {
          Napi::Float64Array out = Napi::Float64Array::New(env, values->size());
          std::copy(values->begin(), values->end(), out.Data());
          return out;
        });
  }

  Napi::Value OptimizerStateBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(live(info.Env()).optimizer_state_bytes()));
  }

  // parameterMemory: { weights, compute, gradients, moments: { bytes, experts }, expertSources }
  // (ml::ParamMemory).
  Napi::Value ParameterMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const ml::ParamMemory m = live(env).parameter_memory();
    Napi::Object out = Napi::Object::New(env);
    for (const auto& [name, held] : {std::pair{"weights", m.weights}, std::pair{"compute", m.compute},
                                     std::pair{"gradients", m.gradients}, std::pair{"moments", m.moments}}) {
      Napi::Object kind = Napi::Object::New(env);
      kind.Set("bytes", double(held.bytes));
      kind.Set("experts", double(held.experts));
      out.Set(name, kind);
    }
    out.Set("expertSources", double(m.expert_sources));
    return out;
  }

  // trainStep(tokens, batch, lenPlusOne, lr, {beta1, beta2, eps, weightDecay, gradClip}, microBatches = 1)
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto batch = std::make_shared<Batch>(batch_args(info));
    if (info.Length() < 5 || !info[3].IsNumber() || !info[4].IsObject())
      throw Napi::TypeError::New(env, "trainStep: expected lr: number and an optimizer object after the batch");
    if (info.Length() > 5 && !info[5].IsUndefined() && !info[5].IsNumber())
      throw Napi::TypeError::New(env, "trainStep: microBatches must be a number");
    const int64_t micro_batches = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int64Value() : 1;
    const double lr = info[3].As<Napi::Number>().DoubleValue();
    const Napi::Object o = info[4].As<Napi::Object>();
    const ml::OptimizerConfig opt = guard(env, [&] {
      return ml::OptimizerConfig{get_double(o, "beta1"), get_double(o, "beta2"), get_double(o, "eps"),
                                 get_double(o, "weightDecay"), get_double(o, "gradClip")};
    });
    auto metrics = std::make_shared<ml::StepMetrics>();
    auto rt = runtime_;
    return launch(
        env,
        [=] {
          *metrics = rt->train_step(batch->tokens.data(), batch->batch, batch->len_plus_one, lr, opt, micro_batches);
        },
        [=](Napi::Env env) { return metrics_object(env, *metrics); });
  }

  // A Float32Array or Float64Array (values of `width` bytes) of the bytes `values` holds.
  static Napi::Value float_array(Napi::Env env, const std::vector<uint8_t>& values, size_t width) {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, values.size());
    std::memcpy(buffer.Data(), values.data(), values.size());
    if (width == 8) return Napi::Float64Array::New(env, values.size() / 8, buffer, 0);
    return Napi::Float32Array::New(env, values.size() / 4, buffer, 0);
  }
  std::shared_ptr<std::vector<uint8_t>> logits_bytes(Napi::Env env, int64_t rows) const {
    const Runtime& rt = live(env);
    return std::make_shared<std::vector<uint8_t>>(size_t(rows * rt.vocab_size()) * ml::dtype_size(rt.dtype()));
  }
  static std::vector<int32_t> int32_values(const Napi::Value& value, const char* what) {
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(value.Env(), std::string(what) + " must be an Int32Array");
    Napi::Int32Array a = value.As<Napi::Int32Array>();
    return {a.Data(), a.Data() + a.ElementLength()};
  }

  // parallelLogits(tokens: Int32Array, batch, len): the logits of every position (batch × len × vocab).
  Napi::Value ParallelLogits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
      throw Napi::TypeError::New(env, "parallelLogits(tokens: Int32Array, batch: number, len: number)");
    auto tokens = std::make_shared<std::vector<int32_t>>(int32_values(info[0], "tokens"));
    const int64_t batch = info[1].As<Napi::Number>().Int64Value(), len = info[2].As<Napi::Number>().Int64Value();
    if (batch <= 0 || len <= 0 || int64_t(tokens->size()) != batch * len)
      throw Napi::RangeError::New(env, "parallelLogits: expected batch × len = " + std::to_string(batch) + " × " +
                                           std::to_string(len) + " tokens, got " + std::to_string(tokens->size()));
    auto out = logits_bytes(env, batch * len);
    auto rt = runtime_;
    return launch(
        env, [=] { rt->parallel_logits(tokens->data(), batch, len, out->data()); },
        [out, width = ml::dtype_size(rt->dtype())](Napi::Env env) { return float_array(env, *out, width); });
  }

  // generateStart(tokens: Int32Array, lengths: Int32Array, maxNewTokens, sampling, stopIds: Int32Array):
  // prefills; resolves to each prompt's last logits (batch × vocab).
  Napi::Value GenerateStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[2].IsNumber() || !info[3].IsObject())
      throw Napi::TypeError::New(env, "generateStart(tokens: Int32Array, lengths: Int32Array, maxNewTokens: number, "
                                      "sampling: object, stopIds: Int32Array)");
    auto request = std::make_shared<ml::GenerateRequest>();
    request->tokens = int32_values(info[0], "tokens");
    for (const int32_t len : int32_values(info[1], "lengths")) request->lengths.push_back(len);
    request->max_new_tokens = info[2].As<Napi::Number>().Int64Value();
    const Napi::Object o = info[3].As<Napi::Object>();
    guard(env, [&] {
      request->sampling = {get_double(o, "temperature"), get_int(o, "topK"),
                           get_double(o, "topP"),        get_double(o, "minP"),
                           get_double(o, "repetitionPenalty"), uint64_t(get_int(o, "seed"))};
    });
    request->stop_ids = int32_values(info[4], "stopIds");
    auto out = logits_bytes(env, int64_t(request->lengths.size()));
    auto rt = runtime_;
    return launch(
        env, [=] { rt->generate_start(*request, out->data()); },
        [out, width = ml::dtype_size(rt->dtype())](Napi::Env env) { return float_array(env, *out, width); });
  }

  // generateNext(maxSteps, maxMs): resolves to { tokens: Int32Array (steps × batch), stepMs, allStopped,
  // cudaGraph }.
  Napi::Value GenerateNext(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "generateNext(maxSteps: number, maxMs: number)");
    const int64_t max_steps = info[0].As<Napi::Number>().Int64Value();
    const double max_ms = info[1].As<Napi::Number>().DoubleValue();
    auto chunk = std::make_shared<ml::GenerateChunk>();
    auto rt = runtime_;
    return launch(
        env, [=] { *chunk = rt->generate_next(max_steps, max_ms); },
        [=](Napi::Env env) {
          Napi::Object out = Napi::Object::New(env);
          Napi::Int32Array tokens = Napi::Int32Array::New(env, chunk->tokens.size());
          std::copy(chunk->tokens.begin(), chunk->tokens.end(), tokens.Data());
          Napi::Array ms = Napi::Array::New(env, chunk->step_ms.size());
          for (size_t i = 0; i < chunk->step_ms.size(); ++i) ms.Set(uint32_t(i), chunk->step_ms[i]);
          out.Set("tokens", tokens);
          out.Set("stepMs", ms);
          out.Set("allStopped", chunk->all_stopped);
          out.Set("cudaGraph", chunk->cuda_graph);
          return out;
        });
  }

  // generateFeed(tokens: Int32Array): one given token per sequence; resolves to the logits after it.
  Napi::Value GenerateFeed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto tokens = std::make_shared<std::vector<int32_t>>(int32_values(info[0], "tokens"));
    auto out = logits_bytes(env, int64_t(tokens->size()));
    auto rt = runtime_;
    return launch(
        env, [=] { rt->generate_feed(tokens->data(), int64_t(tokens->size()), out->data()); },
        [out, width = ml::dtype_size(rt->dtype())](Napi::Env env) { return float_array(env, *out, width); });
  }

  std::shared_ptr<Runtime> runtime_;
};

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("threads", ml::num_threads());
  const ml::GpuInfo gpu = ml::query_gpu();
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, "cpu");
  if (gpu.device_count > 0) backends.Set(1u, "cuda");
  out.Set("backends", backends);
  Napi::Object g = Napi::Object::New(env);
  g.Set("builtWithCuda", gpu.built_with_cuda);
  g.Set("deviceCount", gpu.device_count);
  g.Set("name", gpu.name);
  g.Set("computeCapability", gpu.compute_capability);
  g.Set("status", gpu.status);
  out.Set("gpu", g);
  return out;
}

// loadNccl(): loads NCCL (dist/nccl_api.h) and says which library and version; throws naming
// every place searched when there is none.
Napi::Value LoadNccl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const ml::nccl::Api& nccl = ml::nccl::api();
    Napi::Object out = Napi::Object::New(env);
    out.Set("library", nccl.library);
    out.Set("version", ml::nccl::version_name(nccl.version));
    return out;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value GpuMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ml::GpuMemory m = ml::gpu_memory();
  Napi::Object out = Napi::Object::New(env);
  out.Set("inUse", double(m.in_use));
  out.Set("peakInUse", double(m.peak_in_use));
  out.Set("cached", double(m.cached));
  out.Set("cudaMallocs", double(m.cuda_mallocs));
  out.Set("deviceTotal", double(m.device_total));
  out.Set("deviceFree", double(m.device_free));
  return out;
}

Napi::Value ResetPeakGpuMemory(const Napi::CallbackInfo& info) {
  ml::reset_peak_gpu_memory();
  return info.Env().Undefined();
}

// estimateTrainingMemory(config, paramCount, batch, seqLen, computeBytes): train/memory.h's
// estimate of a training step's device memory, in bytes.
Napi::Value EstimateTrainingMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsObject() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsNumber())
    throw Napi::TypeError::New(env, "estimateTrainingMemory(config, paramCount, batch, seqLen, computeBytes)");
  const ml::MemoryEstimate e = [&] {
    try {
      const auto number = [&](size_t i) { return info[i].As<Napi::Number>().Int64Value(); };
      return ml::estimate_training_memory(parse_config(info[0].As<Napi::Object>()), number(1), number(2), number(3),
                                          number(4));
    } catch (const std::exception& error) {
      throw Napi::Error::New(env, error.what());
    }
  }();
  Napi::Object out = Napi::Object::New(env);
  out.Set("weights", e.weights);
  out.Set("activations", e.activations);
  out.Set("transient", e.transient);
  out.Set("total", e.total());
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Model", Model::Define(env));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("gpuMemory", Napi::Function::New(env, GpuMemory));
  exports.Set("loadNccl", Napi::Function::New(env, LoadNccl));
  exports.Set("resetPeakGpuMemory", Napi::Function::New(env, ResetPeakGpuMemory));
  exports.Set("estimateTrainingMemory", Napi::Function::New(env, EstimateTrainingMemory));
  return exports;
}

}  // namespace

NODE_API_MODULE(mambalab, Init)
