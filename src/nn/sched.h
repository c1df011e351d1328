/* sched.h: a schedule's state as doubles, for checkpoints (internal).
 * Every counter and per-group value of a schedule (its children's too, for
 * SEQUENTIAL and CHAINED), exact up to 2^53. The optimizer's rates and
 * momenta are the optimizer's state, not the schedule's: a checkpoint
 * restores both. */
#ifndef LG_SCHED_H
#define LG_SCHED_H

#include "nn.h"

/* How many doubles lgN_sched_state_save writes (fixed from lg_sched_new on). */
LG_HIDDEN int lgN_sched_state_len(const lg_sched *s);
LG_HIDDEN void lgN_sched_state_save(const lg_sched *s, double *out);
/* Checks everything first (length, kind, group count, integers, ranges) and
 * changes nothing on an error (LG_ERR_VALUE, message on s's ctx). */
LG_HIDDEN lg_status lgN_sched_state_load(lg_sched *s, const double *in, int len);
/* True if a composite (SEQUENTIAL, CHAINED) owns s: its state is the
 * composite's. */
LG_HIDDEN bool lgN_sched_owned(const lg_sched *s);

#endif
