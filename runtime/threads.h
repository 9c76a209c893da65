// Threading policy: how many OpenMP threads a session uses when the user does not say.
#pragma once

namespace nibble {

// Physical cores available to this process (hyper-threads share the int8 units and the
// memory bandwidth a decode step is bound by, so they rarely help).
int default_thread_count();

}  // namespace nibble
