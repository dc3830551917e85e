/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Integration test harness: per cmocka group, a private dbus-daemon whose policy is built from
 * service/org.virtbus1.conf, the real polkitd on it (our .policy and example rules installed for the
 * run), virtbusd with the test driver, and two unprivileged test users to call as.
 *
 *   static void test_something(void **state) {
 *           Harness *h = *state;
 *           _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
 *
 *           assert_string_equal(harness_get_string(harness_bus_root(h), HARNESS_MANAGER_PATH,
 *                                                  HARNESS_MANAGER_INTERFACE, "Driver"), "test");
 *           harness_set_property(harness_bus_as(h, HARNESS_USER_PLAIN), HARNESS_MANAGER_PATH,
 *                                HARNESS_MANAGER_INTERFACE, "LogLevel", &e, "s", "debug");
 *           harness_assert_error(&e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, NULL);
 *   }
 *
 *   int main(void) {
 *           static const struct CMUnitTest tests[] = { cmocka_unit_test(test_something) };
 *           HARNESS_SKIP_UNLESS_ROOT();
 *           return harness_run_group(tests, &(HarnessOptions) {});
 *   }
 *
 * Everything the harness creates (processes, users, polkit files, the temp dir) goes away in
 * harness_stop(), and also at exit or on SIGTERM/SIGINT if a test dies half-way.
 * Environment: VIRTBUS_DAEMON (the virtbusd binary), VIRTBUS_SOURCE_ROOT (the source tree), both set by
 * meson; VIRTBUS_TEST_KEEP=1 keeps the temp dir, VIRTBUS_TEST_VERBOSE=1 prints the daemons' logs always. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "util/macro.h"

#define HARNESS_SERVICE "org.virtbus1"
#define HARNESS_MANAGER_PATH "/org/virtbus1"
#define HARNESS_MANAGER_INTERFACE "org.virtbus1.Manager"
#define HARNESS_PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"

#define HARNESS_USEC_PER_SEC UINT64_C(1000000)
#define HARNESS_USEC_PER_MSEC UINT64_C(1000)
/* Default for waiting on daemons, names and signals; generous for sanitizer builds. */
#define HARNESS_TIMEOUT_USEC (20 * HARNESS_USEC_PER_SEC)

typedef enum HarnessUser {
        HARNESS_USER_ROOT,
        HARNESS_USER_PLAIN,   /* unprivileged, in no supplementary group */
        HARNESS_USER_VIRTBUS, /* unprivileged, member of group 'virtbus' */
        HARNESS_USER_VIRTBUS2, /* another one like it (what one user's things are to another) */
        _HARNESS_USER_MAX,
} HarnessUser;

typedef struct HarnessOptions {
        /* A session-type bus where everyone may talk to everyone (for --user); implies no polkitd. */
        bool session_bus;
        /* Neither polkitd nor the polkit files. */
        bool no_polkit;
        /* Do not start virtbusd: the tests start their own (harness_daemon_start, harness_run). */
        bool no_daemon;
        /* Run virtbusd as this user (its dirs are chowned to it). */
        HarnessUser daemon_user;
        /* Extra virtbusd arguments, NULL-terminated (e.g. "--sysfs-root", dir, NULL). */
        const char * const *daemon_args;
} HarnessOptions;

typedef struct Harness Harness;

/* Writes the bus config, installs the polkit files, creates the users, starts dbus-daemon, polkitd and
 * virtbusd (as the options say), and waits until each owns its name. Returns < 0 after printing why. */
int harness_start(Harness **ret, const HarnessOptions *opts);
/* Stops everything (SIGTERM, then wait) and removes what harness_start created. Returns < 0 if virtbusd
 * did not exit with 0 (a crash, or a leak under LeakSanitizer). NULL-safe. */
int harness_stop(Harness *h);

/* virtbusd under the harness, with the harness's dirs. extra_args (NULL-terminated, may be NULL) are
 * added after the options' daemon_args. Start waits until it owns org.virtbus1. */
int harness_daemon_start(Harness *h, const char * const *extra_args);
/* SIGTERM (or sig) and wait: returns the exit status (128+N for a signal N), -ETIMEDOUT, or -ESRCH when
 * not running. */
int harness_daemon_kill(Harness *h, int sig);
int harness_daemon_stop(Harness *h);
/* Stop (expecting exit status 0) and start again with the same dirs and arguments. */
int harness_daemon_restart(Harness *h);
pid_t harness_daemon_pid(Harness *h);

/* Connections, owned by the harness (don't unref), opened on first use. */
sd_bus *harness_bus_root(Harness *h);
sd_bus *harness_bus_as(Harness *h, HarnessUser user);
/* A new connection as user, owned by the caller. */
int harness_bus_open_as(Harness *h, HarnessUser user, sd_bus **ret);
/* The same on another bus (a second host's), by its address. */
int harness_bus_open_address_as(Harness *h, HarnessUser user, const char *address, sd_bus **ret);

const char *harness_bus_address(Harness *h);
const char *harness_dir(Harness *h);               /* the group's temp dir (0755) */
const char *harness_config_dir(Harness *h);
/* A stand-in for program real, named name, in the new directory dir (a mkdtemp template, changed in place):
 * it waits while dir/hold exists and exits 1 while dir/fail exists, then runs real. For the VIRTBUS_*
 * overrides that let a test hold a child of virtbusd back (qemu-img, mkfs). harness_wrapper_flag makes or
 * removes dir/flag; harness_wrapper_remove removes the script and dir. */
void harness_wrapper_make(char *dir, const char *name, const char *real);
void harness_wrapper_flag(const char *dir, const char *flag, bool on);
void harness_wrapper_remove(const char *dir, const char *name);
const char *harness_state_dir(Harness *h);
const char *harness_runtime_dir(Harness *h);
const char *harness_daemon_log_path(Harness *h);   /* virtbusd's stderr */
/* How many times virtbusd's log says s; and a wait (bounded by timeout_usec, then the test fails) until it
 * has said it n times. */
unsigned harness_daemon_log_count(Harness *h, const char *s);
void harness_daemon_wait_log(Harness *h, const char *s, unsigned n, uint64_t timeout_usec);
const char *harness_user_name(Harness *h, HarnessUser user);
uid_t harness_user_uid(Harness *h, HarnessUser user);
gid_t harness_user_gid(Harness *h, HarnessUser user);

const char *harness_daemon_path(void);             /* $VIRTBUS_DAEMON */
const char *harness_source_root(void);             /* $VIRTBUS_SOURCE_ROOT */
/* $VIRTBUS_SOURCE_ROOT/rel, to free. */
char *harness_source_path(const char *rel);
/* A whole file, to free; NULL if unreadable. */
char *harness_read_file(const char *path);

/* Processes ----------------------------------------------------------------------------------- */

typedef struct HarnessResult {
        int status;  /* exit status, or 128+N when killed by signal N */
        char *out;   /* stdout */
        char *err;   /* stderr */
} HarnessResult;

void harness_result_done(HarnessResult *r);

/* Runs argv (argv[0] is a path) as user (h may be NULL for HARNESS_USER_ROOT) with environment
 * additions env ("NAME=value", NULL-terminated, may be NULL), waits up to timeout_usec (SIGKILL after),
 * and captures its output. */
int harness_run(Harness *h, HarnessUser user, const char * const *argv, const char * const *env,
                uint64_t timeout_usec, HarnessResult *ret);
/* virtbusd (harness_daemon_path()) with args: "virtbusd" is argv[0]. */
int harness_run_daemon(Harness *h, HarnessUser user, const char * const *args, HarnessResult *ret);

/* polkit ------------------------------------------------------------------------------------- */

/* Asks polkitd's CheckAuthorization directly, with user's own connection (harness_bus_as) as the
 * system-bus-name subject. details: "key", "value" pairs, NULL-terminated, may be NULL. */
int harness_polkit_check(Harness *h, HarnessUser user, const char *action, const char * const *details,
                         bool interactive, bool *ret_authorized, bool *ret_challenge);
/* polkitd's pid (0 without one), for tests that stop it or make it hang. */
pid_t harness_polkitd_pid(Harness *h);
/* Installs an extra rules file (JavaScript) for this run; removed by harness_stop. */
int harness_polkit_add_rules(Harness *h, const char *name, const char *javascript);
/* The dirs polkitd sees as its actions and rules dirs (bind-mounted in its own mount namespace), or false
 * when the files went into the system dirs themselves: another polkitd (a second host's) is to see the same. */
bool harness_polkit_private_dirs(Harness *h, const char **ret_actions, const char **ret_rules);
/* Waits until polkitd gives the expected answer for user/action (new rules take effect within ~1 s). */
int harness_polkit_wait_for(Harness *h, HarnessUser user, const char *action, bool authorized);

/* Calls and assertions (all on destination org.virtbus1) ------------------------------------ */

/* The macros below are variadic so that a macro standing for several arguments may be passed, e.g.
 *   #define M HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE
 *   harness_get_string(bus, M, "Version")
 *
 * harness_call_ok(bus, path, interface, member, types, ...): fails the test unless the call succeeds;
 * returns the reply (to unref). */
#define harness_call_ok(...) _harness_call_ok(__FILE__, __LINE__, __VA_ARGS__)
/* harness_call_fails(bus, error_name, message_part, path, interface, member, types, ...): fails the test
 * unless the call fails with exactly error_name (and, if message_part is non-NULL, a message containing
 * it). */
#define harness_call_fails(...) _harness_call_fails(__FILE__, __LINE__, __VA_ARGS__)
/* Fails the test unless e is set to exactly name (and its message contains message_part). */
#define harness_assert_error(e, name, message_part)                                                     \
        _harness_assert_error(__FILE__, __LINE__, e, name, message_part)
/* harness_get_string(bus, path, interface, property): a property of type "s", failing the test on
 * error. The string belongs to a cache that lives until the harness stops. */
#define harness_get_string(...) _harness_get_string(__FILE__, __LINE__, __VA_ARGS__)
/* harness_call_path(bus, path, interface, member, types, arg): a call taking a string ("s") or a string
 * and flags 0 ("st") that answers an object path; returns that path (to free), failing the test on error. */
#define harness_call_path(...) _harness_call_path(__FILE__, __LINE__, __VA_ARGS__)

/* Sets a property; returns the sd-bus result and fills error. */
int harness_set_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_error *error, const char *type, ...);

/* Live introspection of path on org.virtbus1 must equal, for every org.virtbus1.* interface, the ones
 * defined in the given files (relative to the source root, NULL-terminated): same methods, args (name,
 * type, direction, order), signals, properties (type, access) and annotations, ignoring
 * org.freedesktop.DBus.DocString*; and the object must have no org.virtbus1.* interface the files don't
 * describe. Prints both normalized forms on mismatch. */
#define harness_assert_introspection(bus, path, ...)                                                    \
        _harness_assert_introspection(__FILE__, __LINE__, bus, path, (const char *[]) { __VA_ARGS__, NULL })

/* Signals ------------------------------------------------------------------------------------ */

typedef struct HarnessWatch HarnessWatch;

/* Collects matching signals on bus (any of path/interface/member may be NULL = any; sender is always
 * org.virtbus1). The match is installed before this returns. */
HarnessWatch *harness_watch_signal(sd_bus *bus, const char *path, const char *interface, const char *member);
/* The next matching signal (to unref), or NULL after timeout_usec. */
sd_bus_message *harness_watch_next(HarnessWatch *w, uint64_t timeout_usec);
HarnessWatch *harness_watch_free(HarnessWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(HarnessWatch *, harness_watch_free);

/* Fake host devices ------------------------------------------------------------------------- */

/* This machine has no SR-IOV, IOMMU or VFIO: tests that need them run virtbusd with --sysfs-root on a
 * copy of the FAKE tree tests/data/sysfs/host, with tests/helpers/fake-sysfs-kernel
 * ($VIRTBUS_FAKE_SYSFS_KERNEL) doing what the kernel would when files are written. */
typedef struct HarnessFakeSysfs {
        char dir[64];  /* the temp dir (0755) holding the copy */
        char *root;    /* dir/sysfs: what --sysfs-root gets */
        pid_t kernel;
} HarnessFakeSysfs;

/* Copies the tree and starts the fake kernel on it (returns once it says it watches the tree). */
int harness_fake_sysfs_start(HarnessFakeSysfs *f, const char *name);
/* Stops the fake kernel and removes the copy. NULL-safe, idempotent. */
void harness_fake_sysfs_stop(HarnessFakeSysfs *f);
/* The driver a PCI device ("0000:03:10.2") of the tree is bound to, "none" if unbound: read from the tree
 * itself, not through virtbusd. */
char *harness_fake_sysfs_driver(const HarnessFakeSysfs *f, const char *address);
/* What the fake NIC keeps of VF n of its PF enp3s0f0 ("mac vlan"), "" if never set. */
char *harness_fake_sysfs_vf(const HarnessFakeSysfs *f, unsigned n);
#define harness_assert_fake_driver(f, address, want)                                                   \
        do {                                                                                            \
                _cleanup_free_ char *_d = harness_fake_sysfs_driver(f, address);                        \
                assert_non_null(_d);                                                                    \
                assert_string_equal(_d, want);                                                          \
        } while (false)
#define harness_assert_fake_vf(f, n, want)                                                              \
        do {                                                                                            \
                _cleanup_free_ char *_v = harness_fake_sysfs_vf(f, n);                                  \
                assert_non_null(_v);                                                                    \
                assert_string_equal(_v, want);                                                          \
        } while (false)
/* harness_run_group() on a fake tree (its dir named after name): the tree and its kernel are started
 * first and stopped after; virtbusd gets --sysfs-root and then args (NULL-terminated, may be NULL). */
#define harness_run_group_on_fake_sysfs(tests, f, name, ...)                                           \
        _harness_run_group_on_fake_sysfs(#tests, tests, ELEMENTSOF(tests), f, name, __VA_ARGS__)
int _harness_run_group_on_fake_sysfs(const char *group, const struct CMUnitTest *tests, size_t n,
                                     HarnessFakeSysfs *f, const char *name, const char * const *args);

/* Domains ------------------------------------------------------------------------------------ */

#define HARNESS_DOMAIN_INTERFACE "org.virtbus1.Domain"

/* DefineDomain(xml, 0) as bus's user; the new object's path (to free). Fails the test on an error. */
char *harness_define_domain(sd_bus *bus, const char *xml);
/* A minimal domain of the test driver, named name, with these <devices> children. */
char *harness_define_test_domain(sd_bus *bus, const char *name, const char *devices);
/* A Domain method taking only flags (0): Start, Destroy, Shutdown, Suspend, ... */
void harness_domain_call(sd_bus *bus, const char *path, const char *method);
/* After a restart of virtbusd, its QEMUs are listed at once and their monitors connect in the background
 * (calls meanwhile answer busy): waits until the running qemu domain at path answers (bounded). */
void harness_domain_wait_connected(sd_bus *bus, const char *path);
/* GetXMLDesc(flags) (to free). */
char *harness_domain_xml(sd_bus *bus, const char *path, uint64_t flags);
/* The pid in the qemu driver's runtime state file of the domain with this UUID, 0 if none. */
pid_t harness_qemu_pid(Harness *h, const char *uuid);
/* QMP on a connection of the test's own to the monitor of the domain with this UUID (while no virtbusd is
 * connected to it): json's answer line (to free); fails the test when QEMU answers with an error. */
/* The same connection, greeted and past qmp_capabilities, for several commands (fclose it). */
FILE *harness_qmp_open(Harness *h, const char *uuid);
char *harness_qmp(Harness *h, const char *uuid, const char *json);
/* The reply to a call sent with sd_bus_call_method_async() and harness_on_answer: answered 1 on success,
 * -1 on an error (kept in error, to free). */
typedef struct HarnessAnswer {
        int answered;
        sd_bus_error error;
} HarnessAnswer;
int harness_on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
/* Processes bus until a is answered, at most timeout_usec. */
void harness_answer_wait(sd_bus *bus, HarnessAnswer *a, uint64_t timeout_usec);
/* The tiny guest's directory (vmlinuz, initrd.gz; tests/guest/build-guest), built once per run. */
const char *harness_guest_dir(Harness *h);
/* A domain running the tiny guest with a shell on its serial console (serial0, also the console); devices
 * (XML, may be "") go before them. To free. */
char *harness_shell_guest_xml(Harness *h, const char *name, const char *devices);
/* qemu-img info --output=json of file, as run by root (to free); fails the test unless it succeeds. */
char *harness_qemu_img_info(Harness *h, const char *file);
/* Calls method with a descriptor, then xml (if not NULL), then flags 0 (waiting up to 120 s); ret gets the
 * reply. With e NULL the call must succeed; otherwise e gets its error. */
void harness_call_fd(sd_bus *bus, const char *path, const char *interface, const char *method, int fd,
                     const char *xml, sd_bus_message **ret, sd_bus_error *e);
/* Whether process pid has file open (a /proc/PID/fd link names it). */
bool harness_process_has_open(pid_t pid, const char *file);
/* Waits until file holds text at least count times (a guest's console, as it goes), failing the test
 * with what it holds after timeout_usec. */
void harness_wait_for_text(const char *file, const char *text, unsigned count, uint64_t timeout_usec);
uint64_t harness_now_usec(void);
/* A cmocka teardown: SIGKILLs every QEMU the qemu driver's runtime files name (virtbusd leaves its guests
 * running on purpose, so a failed test would leave them). */
int harness_teardown_qemus(void **state);

/* Node devices ------------------------------------------------------------------------------- */

#define HARNESS_NODEDEV_INTERFACE "org.virtbus1.NodeDevice"

/* GetNodeDeviceByName (to free). */
char *harness_nodedev_path(sd_bus *bus, const char *name);
/* A NodeDevice method on the device with this name, failing the test (with the error) if it fails. */
void harness_nodedev_call(sd_bus *bus, const char *name, const char *method, const char *types, ...);

/* cmocka glue ------------------------------------------------------------------------------- */

/* Runs a cmocka group with one harness (the tests' *state) started before and stopped after. Prints
 * the daemons' logs if anything failed. Returns 0 if every test passed, else 1 (also when the harness
 * didn't start), so that main() can return it. */
/* (variadic so that a compound literal with commas may be passed as the options) */
#define harness_run_group(tests, ...) _harness_run_group(#tests, tests, ELEMENTSOF(tests), __VA_ARGS__)
int _harness_run_group(const char *name, const struct CMUnitTest *tests, size_t n, const HarnessOptions *opts);

/* Exit 77 (skip) with a message unless root. */
#define HARNESS_SKIP_UNLESS_ROOT()                                                                      \
        do {                                                                                            \
                if (!harness_can_run())                                                                 \
                        return 77;                                                                      \
        } while (false)
bool harness_can_run(void);

/* Implementation of the macros above. */
/* The reply must be unref'd (the test binaries run under LeakSanitizer too). */
__attribute__((warn_unused_result)) sd_bus_message *_harness_call_ok(const char *file, int line, sd_bus *bus,
                                                                     const char *path, const char *interface,
                                                                     const char *member, const char *types, ...);
void _harness_call_fails(const char *file, int line, sd_bus *bus, const char *error_name,
                         const char *message_part, const char *path, const char *interface,
                         const char *member, const char *types, ...);
void _harness_assert_error(const char *file, int line, const sd_bus_error *e, const char *name,
                           const char *message_part);
const char *_harness_get_string(const char *file, int line, sd_bus *bus, const char *path,
                                const char *interface, const char *property);
char *_harness_call_path(const char *file, int line, sd_bus *bus, const char *path, const char *interface,
                         const char *member, const char *types, const char *arg);
void _harness_assert_introspection(const char *file, int line, sd_bus *bus, const char *path,
                                   const char **files);
/* Normalized text of the interfaces in an introspection document whose names start with prefix (NULL:
 * all), sorted by name; ret_names (may be NULL) gets their names. For the comparer and its self-test. */
char *harness_introspection_normalize(const char *xml, const char *prefix, char ***ret_names);

/* Statistics (GetStats, GetAllDomainStats) ---------------------------------------------------- */

typedef struct HarnessStats {
        size_t n;
        char **keys;
        char *types;      /* the D-Bus type of each value: 'i', 'u', 't', 's' */
        uint64_t *values; /* numbers (an 'i' sign-extended) */
        char **strings;   /* 's' values, else NULL */
} HarnessStats;

/* Reads one a{sv} of reply into ret (fails the test on anything but i, u, t, s values). */
void harness_stats_read(sd_bus_message *reply, HarnessStats *ret);
void harness_stats_done(HarnessStats *s);
/* The type of key, 0 if absent. */
char harness_stats_type(const HarnessStats *s, const char *key);
/* The number at key, which must be there with type (fails the test otherwise). */
uint64_t harness_stats_number(const HarnessStats *s, const char *key, char type);
/* The string at key, NULL if absent. */
const char *harness_stats_string(const HarnessStats *s, const char *key);
