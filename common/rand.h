/*
 * rand: a small seeded PRNG (xoshiro256**) for jitter and randomised
 * timeouts. Not for secrets. Seeded explicitly so tests are repeatable;
 * production seeds from the OS.
 */
#ifndef GF_RAND_H
#define GF_RAND_H

#include <stdint.h>

struct gf_rand {
    uint64_t s[4];
};

void gf_rand_seed(struct gf_rand *r, uint64_t seed);
/* Seeds from getrandom(2), falling back to time and pid. */
void gf_rand_seed_os(struct gf_rand *r);
uint64_t gf_rand_u64(struct gf_rand *r);
/* Uniform in [lo, hi] (inclusive); lo <= hi. */
uint64_t gf_rand_range(struct gf_rand *r, uint64_t lo, uint64_t hi);
/* Uniform in [0, 1). */
double gf_rand_double(struct gf_rand *r);

#endif
