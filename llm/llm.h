// llm/llm.h: the public surface of the llm/ library (the frozen Llama 3 text stack).
//
// Basic usage:
//   #include "llm/llm.h"
//   llama_mm::configure_threads(0);                                   // all cores
//   auto model = llama_mm::load_llama("Llama-3.2-1B-Instruct");       // config.json + *.safetensors
//   auto tok = llama_mm::Tokenizer::from_file("Llama-3.2-1B-Instruct");
//   auto ids = llama_mm::encode_chat(tok, {{"user", "Hello!"}});
//   auto res = llama_mm::generate(*model, tok, ids, llama_mm::default_generate_params());
//   std::cout << res.text;
//
// Errors are llama_mm::Error with a kind (ModelLoad, Config, InputDecode, ...) and a message naming
// the file, key or tensor. Thread-safety: models and tokenizers are read-only after loading; each
// concurrent generation needs its own KVCache (generate() makes one per call); BatchGenerator decodes several
// generations together in one forward pass per token (continuous batching).
#pragma once

#include "llm/atomic_file.h"
#include "llm/batch_generator.h"
#include "llm/chat_format.h"
#include "llm/config_json.h"
#include "llm/error.h"
#include "llm/generator.h"
#include "llm/llama_config.h"
#include "llm/llama_model.h"
#include "llm/rope.h"
#include "llm/safetensors.h"
#include "llm/sampler.h"
#include "llm/sequence.h"
#include "llm/threads.h"
#include "llm/tokenizer.h"
#include "llm/torch_compat.h"
#include "llm/weight_loader.h"
