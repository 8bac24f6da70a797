/*
 * rand: xoshiro256** seeded through splitmix64, as its authors recommend,
 * so that any 64-bit seed gives a well-mixed state.
 */
#include "common/rand.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gf_rand_seed(struct gf_rand *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

void gf_rand_seed_os(struct gf_rand *r)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
        (ssize_t)sizeof(seed)) {
        /* Jitter only needs distinct replicas to differ, not secrecy. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
               ((uint64_t)getpid() << 40);
    }
    gf_rand_seed(r, seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t gf_rand_u64(struct gf_rand *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t gf_rand_range(struct gf_rand *r, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo + 1;
    if (span == 0) /* the full 64-bit range */
        return gf_rand_u64(r);
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % span);
    uint64_t x;
    do {
        x = gf_rand_u64(r);
    } while (x >= limit);
    return lo + x % span;
}

double gf_rand_double(struct gf_rand *r)
{
    return (double)(gf_rand_u64(r) >> 11) * 0x1.0p-53;
}
