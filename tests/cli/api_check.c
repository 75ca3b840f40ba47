/* api_check.c — the generated header against spec/interfaces.md, at compile time.
 *
 * tests/cli/run.sh compiles this with -DP=<prefix> -DHEADER="<prefix>.h"
 * -DINPUT0=... -DOUTPUT0=... -DMAX_BATCH=... and -std=c11 -Wall -Wextra
 * -Werror -pedantic, without the runtime's include folder: it compiles only
 * if the header stands alone, every function has the contract's exact
 * signature (a pointer to it converts without a cast) and the #defines
 * hold the expected values.
 */
#include HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define API(name) CAT(P, name)

_Static_assert(API(_MAX_BATCH) == MAX_BATCH, "P_MAX_BATCH");
_Static_assert(API(_NUM_INPUTS) == 1, "P_NUM_INPUTS");
_Static_assert(API(_NUM_OUTPUTS) == 1, "P_NUM_OUTPUTS");
_Static_assert(API(_INPUT0_SIZE) == INPUT0, "P_INPUT0_SIZE");
_Static_assert(API(_OUTPUT0_SIZE) == OUTPUT0, "P_OUTPUT0_SIZE");

typedef P Model;

Model *(*const check_new)(uint64_t) = API(_new);
void (*const check_free)(Model *) = API(_free);
int (*const check_load)(Model *, const char *) = API(_load);
int (*const check_save)(const Model *, const char *) = API(_save);
int (*const check_predict)(Model *, size_t, const float *const[], float *const[]) = API(_predict);
int (*const check_train_step)(Model *, size_t, const float *const[], const void *const[], float *) =
    API(_train_step);
int (*const check_evaluate)(Model *, size_t, const float *const[], const void *const[], float *, float *) =
    API(_evaluate);
const char *(*const check_last_error)(const Model *) = API(_last_error);
