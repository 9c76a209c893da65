// Shared by quant/'s .cpp files only.
#pragma once

#include <string>

#include "quant/nibble_quantize.h"

namespace nibble::detail {

// quantize_model with the container given instead of taken from out's extension.
QuantizeResult quantize_model_to(const std::string& in, const std::string& out,
                                 const std::string& recipe, const QuantizeOptions& options,
                                 bool gguf);

}  // namespace nibble::detail
