// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "log.h"

/* 0: errors and warnings, 1: -v, 2: -vv; main sets it from the options. */
int log_verbosity;
