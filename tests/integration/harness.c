/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The integration harness: processes, users, polkit files, bus connections, call helpers. */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <dirent.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/tree.h>
#include <libxml/parser.h>

#include "harness.h"

#define DBUS_DAEMON "/usr/bin/dbus-daemon"
#define POLKITD "/usr/lib/polkit-1/polkitd"
#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_BUS_CONF "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf"
#define STOCK_SYSTEM_CONF "/usr/share/dbus-1/system.conf"
#define STOCK_SESSION_CONF "/usr/share/dbus-1/session.conf"
#define POLKIT_ACTIONS_DIR "/usr/share/polkit-1/actions"
#define POLKIT_RULES_DIR "/etc/polkit-1/rules.d"
#define ACCOUNTS_LOCK "/run/virtbus-test-accounts.lock"
/* Present while a group 'virtbus' created by some harness run exists: whoever removes the last member
 * removes the group, so that a group the machine had before is never touched. */
#define GROUP_MARKER "/run/virtbus-test-group-created"
#define TEST_GROUP "virtbus"
#define MAX_FILES 16

typedef struct Account {
        char *name;
        uid_t uid;
        gid_t gid;
        gid_t *groups;
        int n_groups;
} Account;

struct Harness {
        HarnessOptions opts;
        char **daemon_args;  /* copy of opts.daemon_args */
        char **daemon_extra; /* extra args of the last harness_daemon_start */
        char *tag;
        char *dir, *config_dir, *state_dir, *runtime_dir;
        char *bus_config, *address;
        char *dbus_log, *polkit_log, *daemon_log;
        pid_t dbus_pid, polkit_pid, daemon_pid;
        Account users[_HARNESS_USER_MAX];
        sd_bus *buses[_HARNESS_USER_MAX];
        char *files[MAX_FILES]; /* installed outside dir: removed at stop */
        size_t n_files;
        /* polkitd runs in its own mount namespace where these dirs are bind-mounted over the system's
         * actions and rules dirs: it sees our files and no other run's. NULL: the files go into the
         * system dirs under unique names instead. */
        char *polkit_actions_dir, *polkit_rules_dir;
        Harness *next;
};

/* Every running harness, for the exit/signal clean-up. */
static Harness *active;
static pid_t main_pid;
/* Strings returned by harness_get_string(), freed when a harness stops. */
static char **string_cache;
static size_t n_string_cache;
/* The logs of the last stopped harness, printed by harness_run_group() when a test failed. */
static char *saved_logs;
/* Inside harness_run_group(), which prints the logs once at the end if anything failed. */
static bool group_running;

static void string_cache_clear(void) {
        for (size_t i = 0; i < n_string_cache; i++)
                free(string_cache[i]);
        free(string_cache);
        string_cache = NULL;
        n_string_cache = 0;
}

uint64_t harness_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * HARNESS_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = usec / HARNESS_USEC_PER_SEC, .tv_nsec = (usec % HARNESS_USEC_PER_SEC) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static char *xasprintf(const char *format, ...) _printf_(1, 2);
static char *xasprintf(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                abort();
        va_end(ap);
        return s;
}

static char *xstrdup(const char *s) {
        char *d = strdup(s);
        if (!d)
                abort();
        return d;
}

static void strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}

static char **strv_copy(const char * const *l) {
        size_t n = 0;
        char **c;

        while (l && l[n])
                n++;
        c = new0(char *, n + 1);
        if (!c)
                abort();
        for (size_t i = 0; i < n; i++)
                c[i] = xstrdup(l[i]);
        return c;
}

const char *harness_daemon_path(void) {
        return getenv("VIRTBUS_DAEMON");
}

const char *harness_source_root(void) {
        return getenv("VIRTBUS_SOURCE_ROOT");
}

char *harness_source_path(const char *rel) {
        return xasprintf("%s/%s", strempty(harness_source_root()), rel);
}

char *harness_read_file(const char *path) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;
        ssize_t k;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        for (;;) {
                if (len + 4096 + 1 > size) {
                        size = (len + 4096 + 1) * 2;
                        char *n = realloc(buf, size);
                        if (!n)
                                abort();
                        buf = n;
                }
                k = read(fd, buf + len, size - len - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t) k;
        }
        close(fd);
        if (!buf)
                return xstrdup("");
        buf[len] = 0;
        return TAKE_PTR(buf);
}

static int write_file(const char *path, const char *content, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        size_t len = strlen(content);

        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t k = write(fd, content, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                content += k;
                len -= (size_t) k;
        }
        if (fchmod(fd, mode) < 0 || close(fd) < 0)
                return -errno;
        return 0;
}

static int copy_file(const char *from, const char *to) {
        _cleanup_free_ char *s = harness_read_file(from);
        if (!s)
                return -errno;
        return write_file(to, s, 0644);
}

/* Processes ------------------------------------------------------------------------------------------- */

typedef struct Spawn {
        const char * const *argv;
        const char * const *binds; /* "source", "target" pairs to bind-mount in a new mount namespace */
        const char * const *env; /* additions */
        const Account *account;  /* NULL: root */
        int out_fd, err_fd;      /* -1: /dev/null */
        int fd3;                 /* passed on as fd 3 if >= 0 */
} Spawn;

static _Noreturn void child_exec(const Spawn *s) {
        int null, out, err, fd3 = -1;
        sigset_t mask;

        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        sigemptyset(&mask);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);

        /* Move everything out of the way of 0..3 first. */
        null = fcntl(open("/dev/null", O_RDWR | O_CLOEXEC), F_DUPFD_CLOEXEC, 10);
        out = s->out_fd >= 0 ? fcntl(s->out_fd, F_DUPFD_CLOEXEC, 10) : null;
        err = s->err_fd >= 0 ? fcntl(s->err_fd, F_DUPFD_CLOEXEC, 10) : null;
        if (s->fd3 >= 0)
                fd3 = fcntl(s->fd3, F_DUPFD_CLOEXEC, 10);
        if (null < 0 || out < 0 || err < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
                _exit(126);
        if (fd3 >= 0 && dup2(fd3, 3) < 0)
                _exit(126);
        close_range(fd3 >= 0 ? 4 : 3, ~0U, 0);

        for (const char * const *e = s->env; e && *e; e++)
                putenv((char *) *e);

        if (s->binds) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                        fprintf(stderr, "harness: cannot make a mount namespace: %m\n");
                        _exit(125);
                }
                for (const char * const *b = s->binds; b[0] && b[1]; b += 2)
                        if (mount(b[0], b[1], NULL, MS_BIND, NULL) < 0) {
                                fprintf(stderr, "harness: cannot bind %s on %s: %m\n", b[0], b[1]);
                                _exit(125);
                        }
        }

        if (s->account) {
                if (setgroups((size_t) s->account->n_groups, s->account->groups) < 0 ||
                    setresgid(s->account->gid, s->account->gid, s->account->gid) < 0 ||
                    setresuid(s->account->uid, s->account->uid, s->account->uid) < 0) {
                        fprintf(stderr, "harness: failed to become %s: %m\n", s->account->name);
                        _exit(126);
                }
        }
        execv(s->argv[0], (char **) s->argv);
        fprintf(stderr, "harness: failed to execute %s: %m\n", s->argv[0]);
        _exit(127);
}

static int spawn(const Spawn *s, pid_t *ret) {
        pid_t pid;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(s);
        *ret = pid;
        return 0;
}

static int decode_status(int st) {
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 255;
}

/* Returns the exit status, or -ETIMEDOUT. */
static int wait_pid(pid_t pid, uint64_t timeout_usec) {
        uint64_t deadline = harness_now_usec() + timeout_usec;
        int st;

        for (;;) {
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid)
                        return decode_status(st);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (harness_now_usec() > deadline)
                        return -ETIMEDOUT;
                sleep_usec(2 * HARNESS_USEC_PER_MSEC);
        }
}

/* sig, then wait; SIGKILL after timeout. Returns the exit status or -ETIMEDOUT. */
static int kill_and_wait(pid_t *pid, int sig, uint64_t timeout_usec) {
        int r;

        if (*pid <= 0)
                return -ESRCH;
        (void) kill(*pid, sig);
        r = wait_pid(*pid, timeout_usec);
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "harness: pid %d did not exit within %.1f s, killing it\n", (int) *pid,
                        (double) timeout_usec / HARNESS_USEC_PER_SEC);
                (void) kill(*pid, SIGKILL);
                (void) wait_pid(*pid, UINT64_MAX / 2);
        }
        *pid = 0;
        return r;
}

static int pipe_read_all(int fd, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;

        for (;;) {
                if (len + 4097 > size) {
                        size = (len + 4097) * 2;
                        char *n = realloc(buf, size);
                        if (!n)
                                abort();
                        buf = n;
                }
                ssize_t k = read(fd, buf + len, size - len - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

void harness_result_done(HarnessResult *r) {
        free(r->out);
        free(r->err);
        *r = (HarnessResult) {};
}

static int run_as(const Account *account, const char * const *argv, const char * const *env,
                  uint64_t timeout_usec, HarnessResult *ret) {
        char out_path[] = "/tmp/virtbus-test-out-XXXXXX", err_path[] = "/tmp/virtbus-test-err-XXXXXX";
        int out = mkostemp(out_path, O_CLOEXEC), err = mkostemp(err_path, O_CLOEXEC), r;
        pid_t pid;

        if (out < 0 || err < 0)
                return -errno;
        (void) unlink(out_path);
        (void) unlink(err_path);
        r = spawn(&(Spawn) { .argv = argv, .env = env, .account = account, .out_fd = out, .err_fd = err,
                             .fd3 = -1 }, &pid);
        if (r >= 0) {
                r = wait_pid(pid, timeout_usec);
                if (r == -ETIMEDOUT) {
                        fprintf(stderr, "harness: %s did not finish in time, killing it\n", argv[0]);
                        kill(pid, SIGKILL);
                        (void) wait_pid(pid, UINT64_MAX / 2);
                }
        }
        if (r >= 0) {
                *ret = (HarnessResult) { .status = r };
                r = 0;
                lseek(out, 0, SEEK_SET);
                lseek(err, 0, SEEK_SET);
                (void) pipe_read_all(out, &ret->out);
                (void) pipe_read_all(err, &ret->err);
                if (!ret->out)
                        ret->out = xstrdup("");
                if (!ret->err)
                        ret->err = xstrdup("");
        }
        close(out);
        close(err);
        return r;
}

int harness_run(Harness *h, HarnessUser user, const char * const *argv, const char * const *env,
                uint64_t timeout_usec, HarnessResult *ret) {
        return run_as(user == HARNESS_USER_ROOT ? NULL : &h->users[user], argv, env, timeout_usec, ret);
}

int harness_run_daemon(Harness *h, HarnessUser user, const char * const *args, HarnessResult *ret) {
        const char *argv[64] = { harness_daemon_path() };
        size_t n = 1;

        for (const char * const *a = args; a && *a && n < ELEMENTSOF(argv) - 1; a++)
                argv[n++] = *a;
        return harness_run(h, user, argv, NULL, HARNESS_TIMEOUT_USEC, ret);
}

/* Runs a helper (useradd & co.) as root, printing its output if it fails. */
static int run_tool(const char * const *argv) {
        HarnessResult res = {};
        int r = run_as(NULL, argv, NULL, HARNESS_TIMEOUT_USEC, &res);

        if (r >= 0 && res.status != 0) {
                fprintf(stderr, "harness: %s failed (%d): %s%s", argv[0], res.status, res.out, res.err);
                r = -EIO;
        }
        harness_result_done(&res);
        return r;
}

/* Users --------------------------------------------------------------------------------------------- */

static int accounts_lock(void) {
        int fd = open(ACCOUNTS_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
                        ;
        return fd;
}

static void accounts_unlock(int fd) {
        if (fd >= 0)
                close(fd);
}

static int ensure_group(void) {
        int r;

        if (getgrnam(TEST_GROUP))
                return 0;
        r = run_tool((const char *[]) { "/usr/sbin/groupadd", "--system", TEST_GROUP, NULL });
        if (r < 0)
                return r;
        return write_file(GROUP_MARKER, "created by the virtbus integration tests\n", 0644);
}

/* The user virtbusd runs dnsmasq as: Debian's 'dnsmasq' (dnsmasq-base makes it), else the
 * 'virtbus-dnsmasq' system user that service/virtbus-dnsmasq.sysusers makes when the package is
 * installed. It is the package's, so it stays. */
static int ensure_dnsmasq_user(void) {
        if (getpwnam("dnsmasq") || getpwnam("virtbus-dnsmasq"))
                return 0;
        return run_tool((const char *[]) { "/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                           "--shell", "/usr/sbin/nologin", "--user-group", "virtbus-dnsmasq", NULL });
}

static void maybe_remove_group(void) {
        struct group *g;

        if (access(GROUP_MARKER, F_OK) < 0)
                return; /* not ours */
        g = getgrnam(TEST_GROUP);
        if (g && g->gr_mem && g->gr_mem[0])
                return; /* another run still uses it */
        if (g)
                (void) run_tool((const char *[]) { "/usr/sbin/groupdel", TEST_GROUP, NULL });
        (void) unlink(GROUP_MARKER);
}

/* Leftovers of runs that were killed (SIGKILL, a meson timeout) carry their pid in their names: users
 * vbt{p,g}<pid><4 hex>, /tmp/virtbus-test-<pid>-*, polkit files *virtbus*test-<pid>-*. Remove those whose
 * process is gone. Called with the accounts lock held. */
static bool pid_gone(const char *digits, size_t n) {
        char buf[16];
        long pid;

        if (n == 0 || n >= sizeof(buf) || strspn(digits, "0123456789") < n)
                return false;
        memcpy(buf, digits, n);
        buf[n] = 0;
        pid = strtol(buf, NULL, 10);
        return pid > 0 && pid != getpid() && kill((pid_t) pid, 0) < 0 && errno == ESRCH;
}

static void remove_stale_in(const char *dir, const char *prefix, bool is_user_dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                const char *p = strstr(de->d_name, prefix);
                if (!p || (is_user_dir && p != de->d_name))
                        continue;
                p += strlen(prefix);
                if (!pid_gone(p, strcspn(p, "-")))
                        continue;
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
                fprintf(stderr, "harness: removing %s, left by a run that is gone\n", path);
                (void) run_tool((const char *[]) { "/bin/rm", "-rf", "--", path, NULL });
        }
        closedir(d);
}

static void remove_stale_leftovers(void) {
        struct passwd *pw;
        char *stale[64];
        size_t n = 0;

        setpwent();
        while ((pw = getpwent()) && n < ELEMENTSOF(stale)) {
                size_t len = strlen(pw->pw_name);
                if (len > 8 && strncmp(pw->pw_name, "vbt", 3) == 0 && strchr("pgh", pw->pw_name[3]) &&
                    strspn(pw->pw_name + len - 4, "0123456789abcdef") == 4 && pid_gone(pw->pw_name + 4, len - 8))
                        stale[n++] = xstrdup(pw->pw_name);
        }
        endpwent();
        for (size_t i = 0; i < n; i++) {
                fprintf(stderr, "harness: removing user %s, left by a run that is gone\n", stale[i]);
                (void) run_tool((const char *[]) { "/usr/sbin/userdel", stale[i], NULL });
                free(stale[i]);
        }
        remove_stale_in("/tmp", "virtbus-test-", true);
        remove_stale_in(POLKIT_RULES_DIR, "virtbus-test-", false);
        remove_stale_in(POLKIT_ACTIONS_DIR, "org.virtbus1.test-", false);
}

static int account_fill(Account *a) {
        struct passwd *pw = getpwnam(a->name);
        int n = 0;

        if (!pw)
                return -ENOENT;
        a->uid = pw->pw_uid;
        a->gid = pw->pw_gid;
        (void) getgrouplist(a->name, a->gid, NULL, &n);
        a->groups = new0(gid_t, (size_t) n + 1);
        if (!a->groups)
                return -ENOMEM;
        if (getgrouplist(a->name, a->gid, a->groups, &n) < 0)
                return -EIO;
        a->n_groups = n;
        return 0;
}

static int create_user(Harness *h, HarnessUser u) {
        for (int attempt = 0; attempt < 5; attempt++) {
                unsigned rnd = (unsigned) (harness_now_usec() ^ (uint64_t) getpid() << 16) & 0xffff;
                char *name = xasprintf("vbt%c%d%04x", u == HARNESS_USER_PLAIN ? 'p' : u == HARNESS_USER_VIRTBUS ? 'g' : 'h',
                                       (int) getpid(), rnd);
                int r;

                if (getpwnam(name)) {
                        free(name);
                        continue;
                }
                const char *argv[16] = { "/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir",
                                         "/nonexistent", "--shell", "/usr/sbin/nologin", "--no-user-group",
                                         "--gid", "nogroup" };
                size_t n = 10;

                if (u == HARNESS_USER_VIRTBUS || u == HARNESS_USER_VIRTBUS2) {
                        argv[n++] = "--groups";
                        argv[n++] = TEST_GROUP;
                }
                argv[n++] = name;
                r = run_tool(argv);
                if (r < 0) {
                        free(name);
                        return r;
                }
                h->users[u].name = name;
                return account_fill(&h->users[u]);
        }
        return -EEXIST;
}

/* The system user QEMU runs as (service/virtbus-sysusers.conf makes it on a real system); kept. */
static int ensure_qemu_user(void) {
        if (getpwnam("virtbus-qemu"))
                return 0;
        return run_tool((const char *[]) { "/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir",
                                           "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group",
                                           "virtbus-qemu", NULL });
}

static int create_users(Harness *h) {
        int fd = accounts_lock(), r;

        h->users[HARNESS_USER_ROOT] = (Account) { .name = xstrdup("root") };
        remove_stale_leftovers();
        r = ensure_qemu_user();
        if (r >= 0)
                r = ensure_group();
        if (r >= 0)
                r = ensure_dnsmasq_user();
        if (r >= 0)
                r = create_user(h, HARNESS_USER_PLAIN);
        if (r >= 0)
                r = create_user(h, HARNESS_USER_VIRTBUS);
        if (r >= 0)
                r = create_user(h, HARNESS_USER_VIRTBUS2);
        accounts_unlock(fd);
        return r;
}

static void remove_users(Harness *h) {
        int fd = accounts_lock();

        for (HarnessUser u = HARNESS_USER_PLAIN; u < _HARNESS_USER_MAX; u++)
                if (h->users[u].name && getpwnam(h->users[u].name))
                        (void) run_tool((const char *[]) { "/usr/sbin/userdel", h->users[u].name, NULL });
        maybe_remove_group();
        accounts_unlock(fd);
}

/* The bus config ------------------------------------------------------------------------------------- */

/* <busconfig> with our socket, the stock policies of the system (or session) bus, polkit's bus conf and
 * the project's own service/org.virtbus1.conf, included from the source tree. */
static int write_bus_config(Harness *h) {
        const char *stock = h->opts.session_bus ? STOCK_SESSION_CONF : STOCK_SYSTEM_CONF;
        _cleanup_free_ char *listen = xasprintf("unix:path=%s/bus", h->dir);
        _cleanup_free_ char *ours = harness_source_path("service/org.virtbus1.conf");
        xmlDocPtr doc, in;
        xmlNodePtr root, n;
        int r;

        if (access(ours, R_OK) < 0) {
                fprintf(stderr, "harness: %s: %m (is VIRTBUS_SOURCE_ROOT set?)\n", ours);
                return -errno;
        }
        in = xmlReadFile(stock, NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);
        if (!in) {
                fprintf(stderr, "harness: cannot read the stock bus config %s\n", stock);
                return -EIO;
        }
        doc = xmlNewDoc(BAD_CAST "1.0");
        xmlCreateIntSubset(doc, BAD_CAST "busconfig", BAD_CAST "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN",
                           BAD_CAST "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd");
        root = xmlNewDocNode(doc, NULL, BAD_CAST "busconfig", NULL);
        xmlDocSetRootElement(doc, root);
        xmlAddChild(root, xmlNewComment(BAD_CAST " Written by the virtbus test harness. "));
        xmlNewTextChild(root, NULL, BAD_CAST "type", BAD_CAST(h->opts.session_bus ? "session" : "system"));
        xmlNewTextChild(root, NULL, BAD_CAST "listen", BAD_CAST listen);
        xmlNewTextChild(root, NULL, BAD_CAST "auth", BAD_CAST "EXTERNAL");
        /* The stock policy: default deny on the system bus. */
        for (n = xmlDocGetRootElement(in)->children; n; n = n->next)
                if (n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST "policy"))
                        xmlAddChild(root, xmlDocCopyNode(n, doc, 1));
        if (h->opts.session_bus) {
                /* dbus-daemon runs as root here, and the test users must be able to connect. */
                n = xmlNewChild(root, NULL, BAD_CAST "policy", NULL);
                xmlNewProp(n, BAD_CAST "context", BAD_CAST "default");
                xmlNewProp(xmlNewChild(n, NULL, BAD_CAST "allow", NULL), BAD_CAST "user", BAD_CAST "*");
        } else {
                xmlNewTextChild(root, NULL, BAD_CAST "include", BAD_CAST POLKIT_BUS_CONF);
                xmlNewTextChild(root, NULL, BAD_CAST "include", BAD_CAST ours);
        }
        r = xmlSaveFormatFileEnc(h->bus_config, doc, "UTF-8", 1) < 0 ? -EIO : 0;
        xmlFreeDoc(doc);
        xmlFreeDoc(in);
        return r;
}

/* Processes of the harness ------------------------------------------------------------------------- */

static void print_log(const char *title, const char *path) {
        _cleanup_free_ char *s = path ? harness_read_file(path) : NULL;
        if (!s)
                return;
        fprintf(stderr, "---- %s (%s) ----\n%s%s---- end of %s ----\n", title, path, s,
                isempty(s) || s[strlen(s) - 1] == '\n' ? "" : "\n", title);
}

static char *collect_logs(Harness *h) {
        _cleanup_free_ char *d = h->daemon_log ? harness_read_file(h->daemon_log) : NULL;
        _cleanup_free_ char *p = h->polkit_log ? harness_read_file(h->polkit_log) : NULL;
        _cleanup_free_ char *b = h->dbus_log ? harness_read_file(h->dbus_log) : NULL;

        return xasprintf("---- virtbusd (%s) ----\n%s---- polkitd ----\n%s---- dbus-daemon (%s) ----\n%s"
                         "---- end of logs ----\n", h->daemon_log ? h->daemon_log : "-", strempty(d), strempty(p),
                         h->address ? h->address : "-", strempty(b));
}

static void print_logs(Harness *h) {
        _cleanup_free_ char *s = collect_logs(h);
        fputs(s, stderr);
}

static int open_log(const char *path) {
        return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static int bus_name_has_owner(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r, b;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", NULL, &reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "b", &b);
        return r < 0 ? r : b;
}

/* Polls NameHasOwner until name appears; gives up early when pid exits. */
static int wait_for_name(Harness *h, const char *name, pid_t *pid, const char *what) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        int r, st;

        for (;;) {
                r = bus_name_has_owner(harness_bus_root(h), name);
                if (r > 0)
                        return 0;
                if (r < 0) {
                        fprintf(stderr, "harness: NameHasOwner(%s) failed: %s\n", name, strerror(-r));
                        return r;
                }
                if (*pid > 0 && waitpid(*pid, &st, WNOHANG) == *pid) {
                        fprintf(stderr, "harness: %s exited with status %d before owning %s\n", what,
                                decode_status(st), name);
                        *pid = 0;
                        return -ECHILD;
                }
                if (harness_now_usec() > deadline) {
                        fprintf(stderr, "harness: %s did not take %s in time\n", what, name);
                        return -ETIMEDOUT;
                }
                sleep_usec(5 * HARNESS_USEC_PER_MSEC);
        }
}

static int start_dbus(Harness *h) {
        int p[2], log_fd, r;
        _cleanup_free_ char *config_arg = xasprintf("--config-file=%s", h->bus_config);
        char buf[512] = {};
        size_t len = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        log_fd = open_log(h->dbus_log);
        r = spawn(&(Spawn) {
                .argv = (const char *[]) { DBUS_DAEMON, config_arg, "--nofork", "--nopidfile",
                                           "--print-address=3", NULL },
                .out_fd = log_fd, .err_fd = log_fd, .fd3 = p[1] }, &h->dbus_pid);
        close(p[1]);
        close(log_fd);
        if (r < 0) {
                close(p[0]);
                return r;
        }
        /* The address is printed once the socket listens. */
        while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                if (poll(&pfd, 1, (int) (HARNESS_TIMEOUT_USEC / HARNESS_USEC_PER_MSEC)) <= 0)
                        break;
                ssize_t k = read(p[0], buf + len, sizeof(buf) - 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t) k;
        }
        close(p[0]);
        if (!memchr(buf, '\n', len)) {
                fprintf(stderr, "harness: dbus-daemon did not print its address\n");
                return -EIO;
        }
        *strchr(buf, '\n') = 0;
        h->address = xstrdup(buf);
        return 0;
}

static int start_polkit(Harness *h) {
        _cleanup_free_ char *env = xasprintf("DBUS_SYSTEM_BUS_ADDRESS=%s", h->address);
        int log_fd = open_log(h->polkit_log), r;

        const char *binds[] = { h->polkit_actions_dir, POLKIT_ACTIONS_DIR, h->polkit_rules_dir, POLKIT_RULES_DIR,
                                NULL };

        r = spawn(&(Spawn) { .argv = (const char *[]) { POLKITD, NULL }, .env = (const char *[]) { env, NULL },
                             .binds = h->polkit_actions_dir ? binds : NULL, .out_fd = log_fd, .err_fd = log_fd,
                             .fd3 = -1 }, &h->polkit_pid);
        close(log_fd);
        if (r < 0)
                return r;
        return wait_for_name(h, POLKIT_NAME, &h->polkit_pid, "polkitd");
}

static int install_file(Harness *h, const char *path, const char *content, const char *copy_from) {
        int r;

        if (h->n_files >= MAX_FILES)
                return -ENOSPC;
        /* Registered first, so that a half-written file is removed too. */
        h->files[h->n_files++] = xstrdup(path);
        r = copy_from ? copy_file(copy_from, path) : write_file(path, content, 0644);
        if (r < 0)
                fprintf(stderr, "harness: cannot write %s: %s\n", path, strerror(-r));
        return r;
}

/* Can we give polkitd a mount namespace of its own? */
static bool can_private_mounts(void) {
        static int cached = -1;
        pid_t pid;

        if (cached >= 0)
                return cached;
        if (getenv("VIRTBUS_TEST_SHARED_POLKIT_DIRS"))
                return (cached = 0);
        pid = fork();
        if (pid == 0)
                _exit(unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0);
        cached = pid > 0 && wait_pid(pid, HARNESS_TIMEOUT_USEC) == 0;
        if (!cached)
                fprintf(stderr, "harness: no private mount namespace for polkitd: installing the polkit files "
                                "into the system dirs; other runs' files there may change the answers\n");
        return cached;
}

static int install_polkit_files(Harness *h) {
        _cleanup_free_ char *policy_src = harness_source_path("polkit/org.virtbus1.policy");
        _cleanup_free_ char *rules_src = harness_source_path("polkit/50-virtbus-example.rules");
        _cleanup_free_ char *policy = NULL, *rules = NULL;
        int r;

        if (can_private_mounts()) {
                h->polkit_actions_dir = xasprintf("%s/polkit-actions", h->dir);
                h->polkit_rules_dir = xasprintf("%s/polkit-rules", h->dir);
                if (mkdir(h->polkit_actions_dir, 0755) < 0 || mkdir(h->polkit_rules_dir, 0755) < 0)
                        return -errno;
                policy = xasprintf("%s/org.virtbus1.policy", h->polkit_actions_dir);
                rules = xasprintf("%s/50-virtbus-example.rules", h->polkit_rules_dir);
                r = copy_file(policy_src, policy);
                if (r >= 0)
                        r = copy_file(rules_src, rules);
                if (r < 0)
                        fprintf(stderr, "harness: cannot copy the polkit files: %s\n", strerror(-r));
                return r;
        }
        policy = xasprintf(POLKIT_ACTIONS_DIR "/org.virtbus1.test-%s.policy", h->tag);
        rules = xasprintf(POLKIT_RULES_DIR "/50-virtbus-test-%s.rules", h->tag);
        r = install_file(h, policy, NULL, policy_src);
        if (r >= 0)
                r = install_file(h, rules, NULL, rules_src);
        return r;
}

int harness_polkit_add_rules(Harness *h, const char *name, const char *javascript) {
        _cleanup_free_ char *path = NULL;

        if (h->polkit_rules_dir) {
                path = xasprintf("%s/40-%s.rules", h->polkit_rules_dir, name);
                return write_file(path, javascript, 0644);
        }
        path = xasprintf(POLKIT_RULES_DIR "/40-virtbus-test-%s-%s.rules", h->tag, name);
        return install_file(h, path, javascript, NULL);
}

bool harness_polkit_private_dirs(Harness *h, const char **ret_actions, const char **ret_rules) {
        if (!h->polkit_actions_dir)
                return false;
        *ret_actions = h->polkit_actions_dir;
        *ret_rules = h->polkit_rules_dir;
        return true;
}

static void remove_files(Harness *h) {
        for (size_t i = 0; i < h->n_files; i++) {
                (void) unlink(h->files[i]);
                free(h->files[i]);
                h->files[i] = NULL;
        }
        h->n_files = 0;
}

static int make_dir(const char *path, const Account *owner) {
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (owner && chown(path, owner->uid, owner->gid) < 0)
                return -errno;
        return 0;
}

int harness_daemon_start(Harness *h, const char * const *extra_args) {
        const char *argv[96];
        size_t n = 0;
        _cleanup_free_ char *address_arg = xasprintf("--bus-address=%s", h->address);
        const Account *account = h->opts.daemon_user == HARNESS_USER_ROOT ? NULL : &h->users[h->opts.daemon_user];
        int log_fd, r;

        if (h->daemon_pid > 0)
                return -EBUSY;
        if (!harness_daemon_path()) {
                fprintf(stderr, "harness: $VIRTBUS_DAEMON is not set\n");
                return -EINVAL;
        }
        if (extra_args != (const char * const *) h->daemon_extra) {
                strv_free(h->daemon_extra);
                h->daemon_extra = strv_copy(extra_args);
        }
        argv[n++] = harness_daemon_path();
        argv[n++] = address_arg;
        argv[n++] = "--driver=test";
        argv[n++] = "--config-dir";
        argv[n++] = h->config_dir;
        argv[n++] = "--state-dir";
        argv[n++] = h->state_dir;
        argv[n++] = "--runtime-dir";
        argv[n++] = h->runtime_dir;
        for (char **a = h->daemon_args; *a && n < ELEMENTSOF(argv) - 1; a++)
                argv[n++] = *a;
        for (char **a = h->daemon_extra; *a && n < ELEMENTSOF(argv) - 1; a++)
                argv[n++] = *a;
        argv[n] = NULL;

        /* A virtbusd killed just before may own the name a moment longer: a child it had forked and not yet
         * exec'd holds its bus connection until it execs or dies. Started meanwhile, the new one would find
         * the name taken, and wait_for_name() would take the old owner for it. */
        for (uint64_t end = harness_now_usec() + HARNESS_TIMEOUT_USEC;
             bus_name_has_owner(harness_bus_root(h), HARNESS_SERVICE) > 0;) {
                if (harness_now_usec() > end) {
                        fprintf(stderr, "harness: %s is still owned by an earlier virtbusd\n", HARNESS_SERVICE);
                        return -EBUSY;
                }
                sleep_usec(5 * HARNESS_USEC_PER_MSEC);
        }
        log_fd = open_log(h->daemon_log);
        r = spawn(&(Spawn) { .argv = argv, .account = account, .out_fd = log_fd, .err_fd = log_fd, .fd3 = -1 },
                  &h->daemon_pid);
        close(log_fd);
        if (r < 0)
                return r;
        r = wait_for_name(h, HARNESS_SERVICE, &h->daemon_pid, "virtbusd");
        if (r < 0 && !group_running)
                print_log("virtbusd", h->daemon_log);
        return r;
}

int harness_daemon_kill(Harness *h, int sig) {
        return kill_and_wait(&h->daemon_pid, sig, HARNESS_TIMEOUT_USEC);
}

int harness_daemon_stop(Harness *h) {
        return harness_daemon_kill(h, SIGTERM);
}

int harness_daemon_restart(Harness *h) {
        int r = harness_daemon_stop(h);

        if (r != 0) {
                fprintf(stderr, "harness: virtbusd exited with status %d on SIGTERM (expected 0)\n", r);
                if (!group_running)
                        print_log("virtbusd", h->daemon_log);
                return r < 0 ? r : -EIO;
        }
        return harness_daemon_start(h, (const char * const *) h->daemon_extra);
}

pid_t harness_daemon_pid(Harness *h) {
        return h->daemon_pid;
}

/* The QEMUs this harness's virtbusd started (their state files name them): they outlive virtbusd by
 * design, so a test cut short (meson's timeout) must end them itself. No cmocka assertions here. */
static void kill_leftover_qemus(Harness *h) {
        char dir[PATH_MAX];
        struct dirent *de;
        DIR *d;

        if (!h->runtime_dir || snprintf(dir, sizeof dir, "%s/qemu", h->runtime_dir) >= (int) sizeof dir)
                return;
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[PATH_MAX], buf[64] = "";
                int fd, pid = 0;
                ssize_t n;

                if (!strstr(de->d_name, ".state") ||
                    snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int) sizeof path)
                        continue;
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                n = read(fd, buf, sizeof buf - 1);
                close(fd);
                if (n > 0 && sscanf(buf, "pid=%d", &pid) == 1 && pid > 1)
                        (void) kill(pid, SIGKILL);
        }
        closedir(d);
}

/* Emergency clean-up, at exit or on SIGTERM/SIGINT (meson's timeout). Not every call here is
 * async-signal-safe; it is a best effort for a process about to die. */
static void cleanup_everything(void) {
        if (getpid() != main_pid)
                return;
        while (active) {
                Harness *h = active;
                active = h->next;
                h->next = NULL;
                if (h->daemon_pid > 0)
                        (void) kill_and_wait(&h->daemon_pid, SIGTERM, 2 * HARNESS_USEC_PER_SEC);
                if (h->polkit_pid > 0)
                        (void) kill_and_wait(&h->polkit_pid, SIGTERM, 2 * HARNESS_USEC_PER_SEC);
                if (h->dbus_pid > 0)
                        (void) kill_and_wait(&h->dbus_pid, SIGTERM, 2 * HARNESS_USEC_PER_SEC);
                kill_leftover_qemus(h);
                remove_files(h);
                remove_users(h);
                if (h->dir && !getenv("VIRTBUS_TEST_KEEP"))
                        (void) run_tool((const char *[]) { "/bin/rm", "-rf", "--", h->dir, NULL });
        }
}

static void on_fatal_signal(int sig) {
        cleanup_everything();
        signal(sig, SIG_DFL);
        raise(sig);
}

static void install_cleanup_handlers(void) {
        static bool done;
        struct sigaction sa = { .sa_handler = on_fatal_signal };

        if (done)
                return;
        done = true;
        main_pid = getpid();
        atexit(cleanup_everything);
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGABRT, &sa, NULL);
        sigaction(SIGQUIT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

static void unlink_active(Harness *h) {
        for (Harness **i = &active; *i; i = &(*i)->next)
                if (*i == h) {
                        *i = h->next;
                        return;
                }
}

bool harness_can_run(void) {
        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: integration tests need root (they start a private bus and polkitd in "
                                "a mount namespace and create test users); run them through scripts/test as "
                                "root\n");
                return false;
        }
        if (!harness_daemon_path() || !harness_source_root()) {
                fprintf(stderr, "SKIP: VIRTBUS_DAEMON and VIRTBUS_SOURCE_ROOT must be set (meson test does)\n");
                return false;
        }
        if (access(DBUS_DAEMON, X_OK) < 0 || access(POLKITD, X_OK) < 0) {
                fprintf(stderr, "SKIP: %s or %s is missing: run scripts/bootstrap\n", DBUS_DAEMON, POLKITD);
                return false;
        }
        return true;
}

int harness_start(Harness **ret, const HarnessOptions *opts) {
        Harness *h;
        char tmpl[64];
        const Account *owner;
        int r;

        install_cleanup_handlers();
        h = new0(Harness, 1);
        if (!h)
                return -ENOMEM;
        h->opts = opts ? *opts : (HarnessOptions) {};
        if (h->opts.session_bus)
                h->opts.no_polkit = true;
        h->daemon_args = strv_copy(h->opts.daemon_args);
        h->opts.daemon_args = NULL;
        h->daemon_extra = strv_copy(NULL);
        h->next = active;
        active = h;

        snprintf(tmpl, sizeof(tmpl), "/tmp/virtbus-test-%d-XXXXXX", (int) getpid());
        if (!mkdtemp(tmpl)) {
                r = -errno;
                goto fail;
        }
        h->dir = xstrdup(tmpl);
        /* The socket's dir must be reachable by the test users and polkitd. */
        if (chmod(h->dir, 0755) < 0) {
                r = -errno;
                goto fail;
        }
        h->tag = xasprintf("%d-%s", (int) getpid(), strrchr(h->dir, '-') + 1);
        h->bus_config = xasprintf("%s/bus.conf", h->dir);
        h->dbus_log = xasprintf("%s/dbus-daemon.log", h->dir);
        h->polkit_log = xasprintf("%s/polkitd.log", h->dir);
        h->daemon_log = xasprintf("%s/virtbusd.log", h->dir);
        h->config_dir = xasprintf("%s/config", h->dir);
        h->state_dir = xasprintf("%s/state", h->dir);
        h->runtime_dir = xasprintf("%s/runtime", h->dir);

        r = create_users(h);
        if (r < 0) {
                fprintf(stderr, "harness: cannot create the test users: %s\n", strerror(-r));
                goto fail;
        }
        owner = h->opts.daemon_user == HARNESS_USER_ROOT ? NULL : &h->users[h->opts.daemon_user];
        if ((r = make_dir(h->config_dir, owner)) < 0 || (r = make_dir(h->state_dir, owner)) < 0 ||
            (r = make_dir(h->runtime_dir, owner)) < 0)
                goto fail;
        r = write_bus_config(h);
        if (r < 0)
                goto fail;
        if (!h->opts.no_polkit) {
                r = install_polkit_files(h);
                if (r < 0)
                        goto fail;
        }
        r = start_dbus(h);
        if (r < 0)
                goto fail;
        if (!harness_bus_root(h)) {
                r = -EIO;
                goto fail;
        }
        if (!h->opts.no_polkit) {
                r = start_polkit(h);
                if (r < 0)
                        goto fail;
        }
        if (!h->opts.no_daemon) {
                r = harness_daemon_start(h, NULL);
                if (r < 0)
                        goto fail;
        }
        *ret = h;
        return 0;

fail:
        fprintf(stderr, "harness: failed to start: %s\n", strerror(-r));
        if (!group_running)
                print_logs(h);
        (void) harness_stop(h);
        return r;
}

int harness_stop(Harness *h) {
        int r = 0, st;

        if (!h)
                return 0;
        for (HarnessUser u = 0; u < _HARNESS_USER_MAX; u++)
                h->buses[u] = sd_bus_flush_close_unref(h->buses[u]);
        if (h->daemon_pid > 0) {
                st = harness_daemon_stop(h);
                if (st != 0) {
                        fprintf(stderr, "harness: virtbusd exited with status %d on SIGTERM (expected 0)\n", st);
                        r = -EIO;
                }
        }
        if (h->polkit_pid > 0)
                (void) kill_and_wait(&h->polkit_pid, SIGTERM, HARNESS_TIMEOUT_USEC);
        if (h->dbus_pid > 0)
                (void) kill_and_wait(&h->dbus_pid, SIGTERM, HARNESS_TIMEOUT_USEC);

        free(saved_logs);
        saved_logs = collect_logs(h);
        if (r < 0 && !group_running)
                fputs(saved_logs, stderr);

        remove_files(h);
        remove_users(h);
        if (h->dir) {
                if (getenv("VIRTBUS_TEST_KEEP"))
                        fprintf(stderr, "harness: keeping %s\n", h->dir);
                else
                        (void) run_tool((const char *[]) { "/bin/rm", "-rf", "--", h->dir, NULL });
        }
        unlink_active(h);
        string_cache_clear();

        for (HarnessUser u = 0; u < _HARNESS_USER_MAX; u++) {
                free(h->users[u].name);
                free(h->users[u].groups);
        }
        strv_free(h->daemon_args);
        strv_free(h->daemon_extra);
        free(h->tag);
        free(h->polkit_actions_dir);
        free(h->polkit_rules_dir);
        free(h->dir);
        free(h->config_dir);
        free(h->state_dir);
        free(h->runtime_dir);
        free(h->bus_config);
        free(h->address);
        free(h->dbus_log);
        free(h->polkit_log);
        free(h->daemon_log);
        free(h);
        return r;
}

/* Accessors --------------------------------------------------------------------------------------- */

const char *harness_bus_address(Harness *h) {
        return h->address;
}
const char *harness_dir(Harness *h) {
        return h->dir;
}
const char *harness_config_dir(Harness *h) {
        return h->config_dir;
}
const char *harness_state_dir(Harness *h) {
        return h->state_dir;
}
const char *harness_runtime_dir(Harness *h) {
        return h->runtime_dir;
}
const char *harness_daemon_log_path(Harness *h) {
        return h->daemon_log;
}
unsigned harness_daemon_log_count(Harness *h, const char *s) {
        _cleanup_free_ char *log = harness_read_file(h->daemon_log);
        unsigned n = 0;

        for (const char *p = log; p && (p = strstr(p, s)); p += strlen(s))
                n++;
        return n;
}
void harness_daemon_wait_log(Harness *h, const char *s, unsigned n, uint64_t timeout_usec) {
        for (uint64_t end = harness_now_usec() + timeout_usec; harness_daemon_log_count(h, s) < n;) {
                if (harness_now_usec() > end)
                        fail_msg("virtbusd's log never said '%s' %u times", s, n);
                usleep(20 * 1000);
        }
}
const char *harness_user_name(Harness *h, HarnessUser user) {
        return h->users[user].name;
}
uid_t harness_user_uid(Harness *h, HarnessUser user) {
        return h->users[user].uid;
}
gid_t harness_user_gid(Harness *h, HarnessUser user) {
        return h->users[user].gid;
}

/* Connections ------------------------------------------------------------------------------------ */

/* Our credentials while connecting are what dbus-daemon records for the connection (SO_PEERCRED,
 * SO_PEERGROUPS) and what EXTERNAL auth claims: switch the effective ids around connect + Hello. */
int harness_bus_open_as(Harness *h, HarnessUser user, sd_bus **ret) {
        return harness_bus_open_address_as(h, user, h->address, ret);
}

int harness_bus_open_address_as(Harness *h, HarnessUser user, const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Account *a = &h->users[user];
        gid_t saved[256];
        int n_saved = 0, r;
        const char *unique;

        if (user != HARNESS_USER_ROOT) {
                n_saved = getgroups(ELEMENTSOF(saved), saved);
                if (n_saved < 0 || setgroups((size_t) a->n_groups, a->groups) < 0 || setegid(a->gid) < 0 ||
                    seteuid(a->uid) < 0) {
                        fprintf(stderr, "harness: cannot switch to %s: %m\n", a->name);
                        abort();
                }
        }
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_get_unique_name(bus, &unique); /* waits for Hello: auth is over */
        if (user != HARNESS_USER_ROOT) {
                if (seteuid(0) < 0 || setegid(0) < 0 || setgroups((size_t) n_saved, saved) < 0) {
                        fprintf(stderr, "harness: cannot switch back to root: %m\n");
                        abort();
                }
        }
        if (r < 0) {
                fprintf(stderr, "harness: cannot connect to %s as %s: %s\n", address, a->name, strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(bus);
        return 0;
}

sd_bus *harness_bus_as(Harness *h, HarnessUser user) {
        if (!h->buses[user] && harness_bus_open_as(h, user, &h->buses[user]) < 0)
                return NULL;
        return h->buses[user];
}

sd_bus *harness_bus_root(Harness *h) {
        return harness_bus_as(h, HARNESS_USER_ROOT);
}

/* polkit ------------------------------------------------------------------------------------------ */

int harness_polkit_check(Harness *h, HarnessUser user, const char *action, const char * const *details,
                         bool interactive, bool *ret_authorized, bool *ret_challenge) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus *subject = harness_bus_as(h, user), *bus = harness_bus_root(h);
        const char *unique;
        int authorized, challenge, r;

        if (!subject || !bus)
                return -EIO;
        r = sd_bus_get_unique_name(subject, &unique);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, POLKIT_NAME, "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "(sa{sv})s", "system-bus-name", 1, "name", "s", unique, action);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{ss}");
        for (const char * const *d = details; r >= 0 && d && d[0] && d[1]; d += 2)
                r = sd_bus_message_append(m, "{ss}", d[0], d[1]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "us", (uint32_t) (interactive ? 1 : 0), "");
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0) {
                fprintf(stderr, "harness: CheckAuthorization(%s) failed: %s: %s\n", action, e.name, e.message);
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0)
                return r;
        if (ret_authorized)
                *ret_authorized = authorized;
        if (ret_challenge)
                *ret_challenge = challenge;
        return 0;
}

int harness_polkit_wait_for(Harness *h, HarnessUser user, const char *action, bool authorized) {
        uint64_t deadline = harness_now_usec() + HARNESS_TIMEOUT_USEC;
        bool a;
        int r;

        for (;;) {
                r = harness_polkit_check(h, user, action, NULL, false, &a, NULL);
                if (r < 0)
                        return r;
                if (a == authorized)
                        return 0;
                if (harness_now_usec() > deadline)
                        return -ETIMEDOUT;
                sleep_usec(50 * HARNESS_USEC_PER_MSEC);
        }
}

/* Calls -------------------------------------------------------------------------------------------- */

static int callv(sd_bus *bus, const char *path, const char *interface, const char *member, sd_bus_error *error,
                 sd_bus_message **reply, const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!bus)
                return sd_bus_error_set_errno(error, -ENOTCONN);
        r = sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, path, interface, member);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        if (!isempty(types)) {
                r = sd_bus_message_appendv(m, types, ap);
                if (r < 0)
                        return sd_bus_error_set_errno(error, r);
        }
        return sd_bus_call(bus, m, 0, error, reply);
}

sd_bus_message *_harness_call_ok(const char *file, int line, sd_bus *bus, const char *path,
                                 const char *interface, const char *member, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        va_list ap;
        int r;

        va_start(ap, types);
        r = callv(bus, path, interface, member, &e, &reply, types, ap);
        va_end(ap);
        if (r < 0) {
                print_error("%s:%d: %s.%s on %s failed: %s: %s\n", file, line, interface, member, path,
                            strempty(e.name), strempty(e.message));
                _fail(file, line);
        }
        return reply;
}

void _harness_assert_error(const char *file, int line, const sd_bus_error *e, const char *name,
                           const char *message_part) {
        if (!sd_bus_error_is_set(e)) {
                print_error("%s:%d: expected error %s, but the call succeeded\n", file, line, name);
                _fail(file, line);
        }
        if (!streq(e->name, name)) {
                print_error("%s:%d: expected error %s, got %s: %s\n", file, line, name, e->name,
                            strempty(e->message));
                _fail(file, line);
        }
        if (message_part && (!e->message || !strstr(e->message, message_part))) {
                print_error("%s:%d: error %s: message \"%s\" does not contain \"%s\"\n", file, line, e->name,
                            strempty(e->message), message_part);
                _fail(file, line);
        }
}

void _harness_call_fails(const char *file, int line, sd_bus *bus, const char *error_name,
                         const char *message_part, const char *path, const char *interface,
                         const char *member, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        va_list ap;

        va_start(ap, types);
        (void) callv(bus, path, interface, member, &e, &reply, types, ap);
        va_end(ap);
        _harness_assert_error(file, line, &e, error_name, message_part);
}

const char *_harness_get_string(const char *file, int line, sd_bus *bus, const char *path,
                                const char *interface, const char *property) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        char *s = NULL, **n;
        int r;

        r = bus ? sd_bus_get_property_string(bus, HARNESS_SERVICE, path, interface, property, &e, &s) : -ENOTCONN;
        if (r < 0) {
                print_error("%s:%d: reading %s.%s on %s failed: %s: %s\n", file, line, interface, property, path,
                            e.name ? e.name : strerror(-r), strempty(e.message));
                _fail(file, line);
        }
        n = realloc(string_cache, (n_string_cache + 1) * sizeof(char *));
        if (!n)
                abort();
        string_cache = n;
        string_cache[n_string_cache++] = s;
        return s;
}

char *harness_shell_guest_xml(Harness *h, const char *name, const char *devices) {
        const char *g = harness_guest_dir(h);
        char *x;

        assert_true(asprintf(&x,
                             "<domain type='qemu'><name>%s</name><memory unit='MiB'>192</memory><vcpu>1</vcpu>"
                             "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s/vmlinuz</kernel>"
                             "<initrd>%s/initrd.gz</initrd><cmdline>console=ttyS0 panic=-1 virtbus.shell</cmdline></os>"
                             "<features><acpi/></features><devices>%s"
                             "<serial type='pty'><target port='0'/></serial>"
                             "<console type='pty'><target type='serial' port='0'/></console>"
                             "</devices></domain>",
                             name, g, g, devices) >= 0);
        return x;
}

char *harness_qemu_img_info(Harness *h, const char *file) {
        const char *argv[] = { "/usr/bin/qemu-img", "info", "--output=json", file, NULL };
        HarnessResult res = {};
        char *out;

        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, argv, NULL, HARNESS_TIMEOUT_USEC, &res), 0);
        assert_int_equal(res.status, 0);
        out = strdup(res.out);
        harness_result_done(&res);
        return out;
}

void harness_call_fd(sd_bus *bus, const char *path, const char *interface, const char *method, int fd,
                     const char *xml, sd_bus_message **ret, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error own = SD_BUS_ERROR_NULL;
        uint64_t flags = 0;

        assert_int_equal(sd_bus_message_new_method_call(bus, &m, HARNESS_SERVICE, path, interface, method), 0);
        assert_true(sd_bus_message_append(m, "h", fd) >= 0);
        if (xml)
                assert_true(sd_bus_message_append(m, "s", xml) >= 0);
        assert_true(sd_bus_message_append(m, "t", flags) >= 0);
        if (sd_bus_call(bus, m, 120 * HARNESS_USEC_PER_SEC, e ?: &own, ret) < 0 && !e)
                fail_msg("%s failed: %s", method, own.message);
}

char *_harness_call_path(const char *file, int line, sd_bus *bus, const char *path, const char *interface,
                         const char *member, const char *types, const char *arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                streq(types, "s") ? _harness_call_ok(file, line, bus, path, interface, member, "s", arg)
                                  : _harness_call_ok(file, line, bus, path, interface, member, "st", arg, UINT64_C(0));
        const char *o;

        assert_int_equal(sd_bus_message_read(reply, "o", &o), 1);
        return strdup(o);
}

int harness_set_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_error *error, const char *type, ...) {
        va_list ap;
        int r;

        if (!bus)
                return sd_bus_error_set_errno(error, -ENOTCONN);
        va_start(ap, type);
        r = sd_bus_set_propertyv(bus, HARNESS_SERVICE, path, interface, property, error, type, ap);
        va_end(ap);
        return r;
}

/* Signals ----------------------------------------------------------------------------------------- */

struct HarnessWatch {
        sd_bus *bus;
        sd_bus_slot *slot;
        sd_bus_message **queue;
        size_t n_queue;
};

static int on_watched_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        HarnessWatch *w = userdata;
        sd_bus_message **n = realloc(w->queue, (w->n_queue + 1) * sizeof(*n));

        if (!n)
                abort();
        w->queue = n;
        w->queue[w->n_queue++] = sd_bus_message_ref(m);
        return 0;
}

HarnessWatch *harness_watch_signal(sd_bus *bus, const char *path, const char *interface, const char *member) {
        HarnessWatch *w = new0(HarnessWatch, 1);
        int r;

        if (!w || !bus) {
                free(w);
                return NULL;
        }
        w->bus = sd_bus_ref(bus);
        /* sd-bus matches on the sender's unique name once it knows who owns the well-known one. */
        r = sd_bus_match_signal(bus, &w->slot, HARNESS_SERVICE, path, interface, member, on_watched_signal, w);
        if (r < 0) {
                fprintf(stderr, "harness: AddMatch failed: %s\n", strerror(-r));
                return harness_watch_free(w);
        }
        return w;
}

sd_bus_message *harness_watch_next(HarnessWatch *w, uint64_t timeout_usec) {
        uint64_t deadline = harness_now_usec() + timeout_usec;

        while (w->n_queue == 0) {
                int r = sd_bus_process(w->bus, NULL);
                if (r < 0)
                        return NULL;
                if (r > 0)
                        continue;
                uint64_t now = harness_now_usec();
                if (now >= deadline)
                        return NULL;
                (void) sd_bus_wait(w->bus, deadline - now);
        }
        sd_bus_message *m = w->queue[0];
        memmove(w->queue, w->queue + 1, (w->n_queue - 1) * sizeof(*w->queue));
        w->n_queue--;
        return m;
}

HarnessWatch *harness_watch_free(HarnessWatch *w) {
        if (!w)
                return NULL;
        for (size_t i = 0; i < w->n_queue; i++)
                sd_bus_message_unref(w->queue[i]);
        free(w->queue);
        sd_bus_slot_unref(w->slot);
        sd_bus_unref(w->bus);
        free(w);
        return NULL;
}

/* cmocka glue ------------------------------------------------------------------------------------- */

static const HarnessOptions *group_opts;

static int group_setup(void **state) {
        Harness *h = NULL;

        if (harness_start(&h, group_opts) < 0)
                return -1;
        *state = h;
        return 0;
}

static int group_teardown(void **state) {
        return harness_stop(*state) < 0 ? -1 : 0;
}

int _harness_run_group(const char *name, const struct CMUnitTest *tests, size_t n, const HarnessOptions *opts) {
        int r;

        group_opts = opts;
        free(saved_logs);
        saved_logs = NULL;
        group_running = true;
        /* $VIRTBUS_TEST_FILTER: run only the tests whose names match (cmocka's pattern: * and ?). */
        if (getenv("VIRTBUS_TEST_FILTER"))
                cmocka_set_test_filter(getenv("VIRTBUS_TEST_FILTER"));
        r = _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
        group_running = false;
        if ((r != 0 || getenv("VIRTBUS_TEST_VERBOSE")) && saved_logs) {
                fprintf(stderr, "Logs of the daemons of group '%s':\n", name);
                fputs(saved_logs, stderr);
        }
        free(saved_logs);
        saved_logs = NULL;
        xmlCleanupParser();
        return r == 0 ? 0 : 1; /* never 77, which would read as "skipped" */
}

int harness_fake_sysfs_start(HarnessFakeSysfs *f, const char *name) {
        _cleanup_free_ char *src = harness_source_path("tests/data/sysfs/host"), *cmd = NULL;
        const char *kernel = getenv("VIRTBUS_FAKE_SYSFS_KERNEL");
        char ready[16] = "";
        int pfd[2];

        *f = (HarnessFakeSysfs) {};
        snprintf(f->dir, sizeof f->dir, "/tmp/virtbus-%s-XXXXXX", name);
        if (!kernel || !src || !mkdtemp(f->dir)) {
                f->dir[0] = 0;
                return -1;
        }
        if (chmod(f->dir, 0755) < 0 || asprintf(&f->root, "%s/sysfs", f->dir) < 0 ||
            asprintf(&cmd, "cp -a '%s' '%s'", src, f->root) < 0 || system(cmd) != 0 || pipe2(pfd, O_CLOEXEC) < 0)
                return -1;
        f->kernel = fork();
        if (f->kernel < 0)
                return -1;
        if (f->kernel == 0) {
                dup2(pfd[1], STDOUT_FILENO);
                execl(kernel, kernel, f->root, (char *) NULL);
                _exit(127);
        }
        close(pfd[1]);
        if (read(pfd[0], ready, sizeof ready - 1) <= 0 || !strstr(ready, "ready")) {
                close(pfd[0]);
                return -1;
        }
        close(pfd[0]);
        return 0;
}

void harness_fake_sysfs_stop(HarnessFakeSysfs *f) {
        _cleanup_free_ char *rm = NULL;

        if (!f)
                return;
        if (f->kernel > 0) {
                kill(f->kernel, SIGTERM);
                (void) waitpid(f->kernel, NULL, 0);
                f->kernel = 0;
        }
        if (f->dir[0] && asprintf(&rm, "rm -rf '%s'", f->dir) >= 0)
                (void) system(rm);
        f->dir[0] = 0;
        free(f->root);
        f->root = NULL;
}

char *harness_fake_sysfs_driver(const HarnessFakeSysfs *f, const char *address) {
        _cleanup_free_ char *link = NULL;
        char buf[256];
        const char *slash;
        ssize_t n;

        if (asprintf(&link, "%s/bus/pci/devices/%s/driver", f->root, address) < 0)
                return NULL;
        n = readlink(link, buf, sizeof buf - 1);
        if (n < 0)
                return strdup("none");
        buf[n] = 0;
        slash = strrchr(buf, '/');
        return strdup(slash ? slash + 1 : buf);
}

char *harness_fake_sysfs_vf(const HarnessFakeSysfs *f, unsigned n) {
        _cleanup_free_ char *p = NULL;
        char *s;

        if (asprintf(&p, "%s/class/net/enp3s0f0/.fake-vf%u", f->root, n) < 0)
                return NULL;
        s = harness_read_file(p);
        return s ?: strdup("");
}

int _harness_run_group_on_fake_sysfs(const char *group, const struct CMUnitTest *tests, size_t n,
                                     HarnessFakeSysfs *f, const char *name, const char * const *args) {
        _cleanup_free_ const char **argv = NULL;
        size_t k = 0, n_args = 0;
        int r;

        while (args && args[n_args])
                n_args++;
        if (harness_fake_sysfs_start(f, name) < 0) {
                fprintf(stderr, "Failed to set up the fake sysfs tree: %m\n");
                harness_fake_sysfs_stop(f);
                return 1;
        }
        argv = calloc(n_args + 3, sizeof(char *));
        if (!argv) {
                harness_fake_sysfs_stop(f);
                return 1;
        }
        argv[k++] = "--sysfs-root";
        argv[k++] = f->root;
        for (size_t i = 0; i < n_args; i++)
                argv[k++] = args[i];
        r = _harness_run_group(group, tests, n, &(HarnessOptions) { .daemon_args = argv });
        harness_fake_sysfs_stop(f);
        return r;
}

/* Domains ------------------------------------------------------------------------------------ */

char *harness_define_domain(sd_bus *bus, const char *xml) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE, "DefineDomain", "st", xml, UINT64_C(0));
        const char *path;

        assert_int_equal(sd_bus_message_read(reply, "o", &path), 1);
        return strdup(path);
}

char *harness_define_test_domain(sd_bus *bus, const char *name, const char *devices) {
        _cleanup_free_ char *xml = NULL;

        assert_true(asprintf(&xml,
                             "<domain type='test'><name>%s</name><memory unit='MiB'>128</memory>"
                             "<os><type>hvm</type></os><devices>%s</devices></domain>",
                             name, devices) >= 0);
        return harness_define_domain(bus, xml);
}

void harness_domain_call(sd_bus *bus, const char *path, const char *method) {
        sd_bus_message_unref(harness_call_ok(bus, path, HARNESS_DOMAIN_INTERFACE, method, "t", UINT64_C(0)));
}

void harness_domain_wait_connected(sd_bus *bus, const char *path) {
        uint64_t deadline = harness_now_usec() + 60 * HARNESS_USEC_PER_SEC;

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                uint64_t kib = 0;
                int r;

                r = sd_bus_get_property_trivial(bus, HARNESS_SERVICE, path, HARNESS_DOMAIN_INTERFACE,
                                                "CurrentMemoryKiB", &e, 't', &kib);
                if (r < 0)
                        fail_msg("CurrentMemoryKiB of %s: %s", path, e.message);
                /* The balloon's target set to what it is: answered by QEMU (or refused without a balloon). */
                r = sd_bus_call_method(bus, HARNESS_SERVICE, path, HARNESS_DOMAIN_INTERFACE, "SetMemory", &e, NULL,
                                       "tt", kib, UINT64_C(1));
                if (r >= 0 || !e.message || !strstr(e.message, "still connecting"))
                        return;
                if (harness_now_usec() > deadline)
                        fail_msg("virtbusd did not connect to the QEMU of %s: %s", path, e.message);
                usleep(20 * 1000);
        }
}

char *harness_domain_xml(sd_bus *bus, const char *path, uint64_t flags) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, path, HARNESS_DOMAIN_INTERFACE, "GetXMLDesc", "t", flags);
        const char *xml;

        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

const char *harness_guest_dir(Harness *h) {
        static char *dir;
        HarnessResult res = {};
        _cleanup_free_ char *script = NULL;

        if (dir)
                return dir;
        script = harness_source_path("tests/guest/build-guest");
        assert_int_equal(harness_run(h, HARNESS_USER_ROOT, (const char *[]) { script, NULL }, NULL,
                                     300 * HARNESS_USEC_PER_SEC, &res),
                         0);
        if (res.status != 0)
                fail_msg("build-guest failed (%d): %s", res.status, res.err);
        dir = strndup(res.out, strcspn(res.out, "\n"));
        harness_result_done(&res);
        return dir;
}

bool harness_process_has_open(pid_t pid, const char *file) {
        char dir[64], link[PATH_MAX], target[PATH_MAX];
        DIR *d;
        struct dirent *de;
        bool found = false;

        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        assert_non_null(d);
        while ((de = readdir(d)) && !found) {
                ssize_t n;
                snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
                n = readlink(link, target, sizeof target - 1);
                if (n > 0) {
                        target[n] = 0;
                        found = streq(target, file);
                }
        }
        closedir(d);
        return found;
}

pid_t harness_polkitd_pid(Harness *h) {
        return h->polkit_pid;
}

/* Sends json; fails the test on QEMU's error. Its answer line in line. */
static void qmp_send(FILE *f, const char *json, char *line, size_t size) {
        assert_true(fputs(json, f) >= 0 && fputs("\r\n", f) >= 0 && fflush(f) == 0);
        while (fgets(line, (int) size, f)) {
                if (strstr(line, "\"error\""))
                        fail_msg("QEMU refused %s: %s", json, line);
                if (strstr(line, "\"return\""))
                        return;
        }
        fail_msg("QEMU closed its monitor after %s", json);
}

FILE *harness_qmp_open(Harness *h, const char *uuid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char line[4096];
        FILE *f;
        int fd;

        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/qemu/%s.sock", harness_runtime_dir(h), uuid);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        f = fdopen(fd, "r+");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f)); /* the greeting */
        qmp_send(f, "{\"execute\":\"qmp_capabilities\"}", line, sizeof line);
        return f;
}

char *harness_qmp(Harness *h, const char *uuid, const char *json) {
        static char line[65536];
        FILE *f = harness_qmp_open(h, uuid);
        char *ret;

        qmp_send(f, json, line, sizeof line);
        ret = strdup(line);
        fclose(f);
        assert_non_null(ret);
        return ret;
}

int harness_on_answer(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        HarnessAnswer *a = userdata;

        a->answered = sd_bus_message_is_method_error(m, NULL) ? -1 : 1;
        if (a->answered < 0)
                (void) sd_bus_error_copy(&a->error, sd_bus_message_get_error(m));
        return 0;
}

void harness_answer_wait(sd_bus *bus, HarnessAnswer *a, uint64_t timeout_usec) {
        for (uint64_t end = harness_now_usec() + timeout_usec; a->answered == 0 && harness_now_usec() < end;)
                if (sd_bus_process(bus, NULL) == 0)
                        (void) sd_bus_wait(bus, 100000);
}

pid_t harness_qemu_pid(Harness *h, const char *uuid) {
        _cleanup_free_ char *path = NULL, *s = NULL;
        int pid = 0;

        assert_true(asprintf(&path, "%s/qemu/%s.state", harness_runtime_dir(h), uuid) >= 0);
        s = harness_read_file(path);
        if (!s || sscanf(s, "pid=%d", &pid) != 1)
                return 0;
        return pid;
}

void harness_wait_for_text(const char *file, const char *text, unsigned count, uint64_t timeout_usec) {
        uint64_t deadline = harness_now_usec() + timeout_usec;

        for (;;) {
                _cleanup_free_ char *s = harness_read_file(file);
                unsigned n = 0;

                for (const char *p = s; p && (p = strstr(p, text)); p++)
                        n++;
                if (n >= count)
                        return;
                if (harness_now_usec() > deadline)
                        fail_msg("'%s' did not show '%s' (x%u) in time; it has:\n%s", file, text, count, s ? s : "");
                usleep(20 * 1000);
        }
}

int harness_teardown_qemus(void **state) {
        Harness *h = *state;
        _cleanup_free_ char *dir = NULL;
        struct dirent *de;
        DIR *d;

        if (asprintf(&dir, "%s/qemu", harness_runtime_dir(h)) < 0)
                return 0;
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char uuid[37];
                pid_t pid;

                if (strlen(de->d_name) != 42 || !strstr(de->d_name, ".state"))
                        continue;
                snprintf(uuid, sizeof uuid, "%.36s", de->d_name);
                pid = harness_qemu_pid(h, uuid);
                if (pid > 1 && kill(pid, SIGKILL) == 0)
                        fprintf(stderr, "harness: killed leftover QEMU %d\n", (int) pid);
        }
        closedir(d);
        return 0;
}

/* Node devices ------------------------------------------------------------------------------- */

char *harness_nodedev_path(sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply =
                harness_call_ok(bus, HARNESS_MANAGER_PATH, HARNESS_MANAGER_INTERFACE, "GetNodeDeviceByName", "s", name);
        const char *p;

        assert_int_equal(sd_bus_message_read(reply, "o", &p), 1);
        return strdup(p);
}

void harness_nodedev_call(sd_bus *bus, const char *name, const char *method, const char *types, ...) {
        _cleanup_free_ char *p = harness_nodedev_path(bus, name);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;

        assert_int_equal(sd_bus_message_new_method_call(bus, &call, HARNESS_SERVICE, p, HARNESS_NODEDEV_INTERFACE,
                                                        method), 0);
        va_start(ap, types);
        assert_true(sd_bus_message_appendv(call, types, ap) >= 0);
        va_end(ap);
        if (sd_bus_call(bus, call, 0, &e, &reply) < 0)
                fail_msg("%s.%s on %s failed: %s: %s", HARNESS_NODEDEV_INTERFACE, method, name, e.name, e.message);
}

void harness_stats_read(sd_bus_message *reply, HarnessStats *ret) {
        HarnessStats s = {};
        int r;

        assert_int_equal(sd_bus_message_enter_container(reply, 'a', "{sv}"), 1);
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *contents;
                char type;
                uint64_t v = 0;
                char *str = NULL;

                assert_int_equal(sd_bus_message_read(reply, "s", &key), 1);
                assert_true(sd_bus_message_peek_type(reply, NULL, &contents) > 0);
                type = contents[0];
                assert_int_equal(sd_bus_message_enter_container(reply, 'v', contents), 1);
                if (type == 'i') {
                        int32_t i;
                        assert_int_equal(sd_bus_message_read_basic(reply, 'i', &i), 1);
                        v = (uint64_t) (int64_t) i;
                } else if (type == 'u') {
                        uint32_t u;
                        assert_int_equal(sd_bus_message_read_basic(reply, 'u', &u), 1);
                        v = u;
                } else if (type == 't') {
                        assert_int_equal(sd_bus_message_read_basic(reply, 't', &v), 1);
                } else if (type == 's') {
                        const char *t;
                        assert_int_equal(sd_bus_message_read_basic(reply, 's', &t), 1);
                        str = strdup(t);
                        assert_non_null(str);
                } else
                        fail_msg("statistic '%s' has type '%s'", key, contents);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                assert_int_equal(sd_bus_message_exit_container(reply), 1);
                s.keys = realloc(s.keys, (s.n + 1) * sizeof(char *));
                s.types = realloc(s.types, s.n + 1);
                s.values = realloc(s.values, (s.n + 1) * sizeof(uint64_t));
                s.strings = realloc(s.strings, (s.n + 1) * sizeof(char *));
                assert_true(s.keys && s.types && s.values && s.strings);
                s.keys[s.n] = strdup(key);
                assert_non_null(s.keys[s.n]);
                s.types[s.n] = type;
                s.values[s.n] = v;
                s.strings[s.n] = str;
                s.n++;
        }
        assert_true(r >= 0);
        assert_int_equal(sd_bus_message_exit_container(reply), 1);
        *ret = s;
}

void harness_stats_done(HarnessStats *s) {
        for (size_t i = 0; i < s->n; i++) {
                free(s->keys[i]);
                free(s->strings[i]);
        }
        free(s->keys);
        free(s->types);
        free(s->values);
        free(s->strings);
        *s = (HarnessStats) {};
}

static ssize_t stats_find(const HarnessStats *s, const char *key) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->keys[i], key))
                        return (ssize_t) i;
        return -1;
}

char harness_stats_type(const HarnessStats *s, const char *key) {
        ssize_t i = stats_find(s, key);
        return i < 0 ? 0 : s->types[i];
}

uint64_t harness_stats_number(const HarnessStats *s, const char *key, char type) {
        ssize_t i = stats_find(s, key);

        if (i < 0)
                fail_msg("no statistic '%s'", key);
        if (s->types[i] != type)
                fail_msg("statistic '%s' has type '%c', expected '%c'", key, s->types[i], type);
        return s->values[i];
}

const char *harness_stats_string(const HarnessStats *s, const char *key) {
        ssize_t i = stats_find(s, key);
        return i < 0 ? NULL : s->strings[i];
}

void harness_wrapper_make(char *dir, const char *name, const char *real) {
        _cleanup_free_ char *script = NULL;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        assert_true(asprintf(&script, "%s/%s", dir, name) > 0);
        f = fopen(script, "we");
        assert_non_null(f);
        fprintf(f, "#!/bin/sh\nwhile [ -e %s/hold ]; do sleep 0.02; done\n[ -e %s/fail ] && exit 1\nexec %s \"$@\"\n",
                dir, dir, real);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(script, 0755), 0);
}

void harness_wrapper_flag(const char *dir, const char *flag, bool on) {
        _cleanup_free_ char *path = NULL;

        assert_true(asprintf(&path, "%s/%s", dir, flag) > 0);
        if (on)
                assert_int_equal(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)), 0);
        else
                assert_int_equal(unlink(path), 0);
}

void harness_wrapper_remove(const char *dir, const char *name) {
        _cleanup_free_ char *script = NULL;

        if (asprintf(&script, "%s/%s", dir, name) > 0)
                (void) unlink(script);
        (void) rmdir(dir);
}
