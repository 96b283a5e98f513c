// The interposed entry points are the only symbols this library exports.
#pragma once

#define OOMGUARD_INTERPOSE extern "C" __attribute__((visibility("default")))
