/* options_idioms.cpp: options_idioms.c built as C++17 (see there). */
#include "options_idioms.c"
