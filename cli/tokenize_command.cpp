// cli/tokenize_command.cpp: `llama-mm tokenize` (stdin text -> JSON ids) and `llama-mm detokenize`
// (stdin JSON ids -> text).
#include "cli/commands.h"
#include "llm/llm.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace llama_mm::cli {

namespace {
struct TokenizeOptions {
  std::string tokenizer;
  bool parse_special = false, skip_special = false;
};
}  // namespace

void add_tokenize_commands(CLI::App& app, Action& action) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* tok_cmd = app.add_subcommand("tokenize", "Read UTF-8 text on stdin, print its token ids as a JSON array");
  tok_cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json, tokenizer.model, or a model directory")->required();
  tok_cmd->add_flag("--parse-special", o->parse_special, "Turn special-token text into special tokens");
  tok_cmd->callback([o, &action] {
    action = [o] {
      auto tok = Tokenizer::from_file(o->tokenizer);
      const std::string text = read_stdin();
      std::cout << nlohmann::json(tok.encode(text, o->parse_special)).dump() << "\n";
      return 0;
    };
  });

  auto* detok_cmd = app.add_subcommand("detokenize", "Read a JSON array of token ids on stdin, print the text");
  detok_cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json, tokenizer.model, or a model directory")->required();
  detok_cmd->add_flag("--skip-special", o->skip_special, "Leave special tokens out of the text");
  detok_cmd->callback([o, &action] {
    action = [o] {
      auto tok = Tokenizer::from_file(o->tokenizer);
      std::vector<int32_t> ids;
      try {
        auto j = nlohmann::json::parse(read_stdin());
        if (!j.is_array()) throw Error(ErrorKind::InputDecode, "stdin: expected a JSON array of token ids");
        for (size_t i = 0; i < j.size(); ++i) {
          if (!j[i].is_number_integer())
            throw Error(ErrorKind::InputDecode, "stdin: element " + std::to_string(i) + " is not an integer: " + j[i].dump());
          const int64_t id = j[i].get<int64_t>();
          if (id < 0 || id >= tok.n_vocab())
            throw Error(ErrorKind::InputDecode, "stdin: element " + std::to_string(i) + ": token id " + std::to_string(id) +
                                                    " is outside the vocabulary [0, " + std::to_string(tok.n_vocab()) + ")");
          ids.push_back(static_cast<int32_t>(id));
        }
      } catch (const nlohmann::json::parse_error& e) {
        throw Error(ErrorKind::InputDecode, std::string("stdin: invalid JSON: ") + e.what());
      }
      std::cout << tok.decode(ids, o->skip_special) << std::flush;
      return 0;
    };
  });
}

}  // namespace llama_mm::cli
