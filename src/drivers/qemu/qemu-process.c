/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* QEMU processes: start (socket, argv, spawn, monitor, cont), reconnection, termination, the state
 * files, and the live definition as QEMU reports it. */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf/device-host-source.h"
#include "conf/domain-access.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-process.h"
#include "drivers/qemu/qemu-sequence.h"
#include "host/process.h"
#include "host/netlink-net.h"
#include "host/tap.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/socket-util.h"
#include "util/strbuf.h"
#include "util/worker.h"

#define QEMU_TERM_GRACE_USEC (1000 * 1000ULL)
/* After SIGKILL: how long the kernel may take to end it before we say it did not. */
#define QEMU_KILL_WAIT_USEC (5 * 1000 * 1000ULL)

static int vm_path(const QemuVm *vm, const char *suffix, char **ret) {
        return asprintf(ret, "%s/%s.%s", vm->cfg.runtime_dir, vm->uuid, suffix) < 0 ? -ENOMEM : 0;
}

static void vm_start_free(QemuVmStart *st);

QemuVm *qemu_vm_free(QemuVm *vm) {
        if (!vm)
                return NULL;
        vm->destroying = true; /* nothing is carried on from the callbacks below */
        sd_event_source_disable_unref(vm->pid_source);
        sd_event_source_disable_unref(vm->kill_timer);
        free(vm->connect_error);
        /* Whoever waits for its commands hears that it went away. */
        qemu_seq_abort_all(vm, "the domain stopped");
        vm_start_free(vm->start);
        qemu_monitor_free(vm->mon);
        qemu_agent_free(vm->agent);
        free(vm->agent_alias);
        qemu_stats_cache_free(vm->stats_cache);
        if (vm->pidfd >= 0)
                close(vm->pidfd);
        domain_def_free(vm->live);
        for (size_t i = 0; i < vm->n_macvtaps; i++)
                free(vm->macvtaps[i]);
        free(vm->macvtaps);
        free(vm->log_path);
        free(vm);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(QemuVm *, qemu_vm_free);

static QemuVm *vm_new(const QemuVmConfig *cfg, const char *uuid) {
        QemuVm *vm = new0(QemuVm, 1);
        if (!vm)
                return NULL;
        vm->cfg = *cfg;
        vm->pidfd = -1;
        snprintf(vm->uuid, sizeof vm->uuid, "%s", uuid);
        return vm;
}

void qemu_vm_macvtap_delete(QemuVm *vm, const char *name) {
        for (size_t i = 0; i < vm->n_macvtaps; i++)
                if (streq(vm->macvtaps[i], name)) {
                        int r = host_netlink_link_delete(name);
                        if (r < 0 && r != -ENODEV)
                                log_warning_errno(r, "Failed to delete macvtap '%s', ignoring: %m", name);
                        else
                                log_notice("Domain %s: macvtap '%s' deleted.", vm->uuid, name);
                        free(vm->macvtaps[i]);
                        vm->macvtaps[i] = vm->macvtaps[--vm->n_macvtaps];
                        return;
                }
}

int qemu_vm_macvtap_remember(QemuVm *vm, const char *name) {
        for (size_t i = 0; i < vm->n_macvtaps; i++)
                if (streq(vm->macvtaps[i], name))
                        return 0;
        if (!GREEDY_REALLOC(vm->macvtaps, vm->n_macvtaps_allocated, vm->n_macvtaps + 1) ||
            !(vm->macvtaps[vm->n_macvtaps] = strdup(name)))
                return -ENOMEM;
        vm->n_macvtaps++;
        return 0;
}

int qemu_vm_macvtap_create(QemuVm *vm, const DeviceDef *dev, char **ret_name, int *ret_fd, VbError *reterr) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        _cleanup_free_ char *name = NULL;
        const char *lower, *mode, *want;
        char path[64];
        uint8_t mac[6];
        int r, ifindex, fd;

        r = qemu_device_node(dev, &n);
        if (r < 0)
                return r;
        if (qemu_interface_direct(n, &lower, &mode, &want) <= 0 || !lower)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Interface of type 'direct' needs <source dev='...'/>");
        if (want && strlen(want) < 16 && strncmp(want, "macvtap", 7) != 0 && strncmp(want, "vnet", 4) != 0)
                name = strdup(want);
        else {
                uint32_t rnd = 0;
                (void) !getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
                if (asprintf(&name, "vbmvt%06x", rnd & 0xffffff) < 0)
                        name = NULL;
        }
        if (!name || !GREEDY_REALLOC(vm->macvtaps, vm->n_macvtaps_allocated, vm->n_macvtaps + 1))
                return -ENOMEM;
        ifindex = host_netlink_macvtap_add(name, lower, mode, device_interface_get_mac(dev, mac) ? mac : NULL);
        if (ifindex < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create macvtap '%s' on '%s' (mode %s): %s",
                                    name, lower, mode, strerror(-ifindex));
        vm->macvtaps[vm->n_macvtaps++] = strdup(name);
        if (!vm->macvtaps[vm->n_macvtaps - 1]) {
                vm->n_macvtaps--;
                (void) host_netlink_link_delete(name);
                return -ENOMEM;
        }
        log_notice("Domain %s: macvtap '%s' on '%s' (mode %s) created.", vm->uuid, name, lower, mode);
        snprintf(path, sizeof path, "/dev/tap%d", ifindex);
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                qemu_vm_macvtap_delete(vm, name);
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to open '%s' of macvtap '%s': %s", path,
                                    name, strerror(-r));
        }
        *ret_fd = fd;
        *ret_name = TAKE_PTR(name);
        return 0;
}

/* Whether dev is a virtio console, virtio channel (not the guest agent's) or parallel port of type pty
 * (the default), and which one among them (k). */
static bool console_is_listened(const DeviceDef *dev, unsigned *k) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *type;

        if (device_channel_is_guest_agent(dev) || qemu_device_node(dev, &n) < 0 ||
            !qemu_chardev_is_listened(dev->kind, qemu_node_attr(n, "target", "type")))
                return false;
        type = qemu_node_attr(n, NULL, "type");
        if (type && !streq(type, "pty"))
                return false;
        (*k)++;
        return true;
}

int qemu_vm_console_socket_path(const QemuVm *vm, const DeviceDef *dev, char **ret) {
        char suffix[32];
        unsigned k = 0;

        for (size_t i = 0; i < vm->live->n_devices; i++)
                if (console_is_listened(vm->live->devices[i], &k) && vm->live->devices[i] == dev) {
                        snprintf(suffix, sizeof suffix, "console%u", k - 1);
                        return vm_path(vm, suffix, ret);
                }
        return -ENOENT;
}

void qemu_vm_remove_files(QemuVm *vm) {
        static const char * const suffixes[] = { "sock", "state", "xml", "plug", "agent" };

        while (vm->n_macvtaps > 0)
                qemu_vm_macvtap_delete(vm, vm->macvtaps[0]);
        for (size_t i = 0; vm->live && i < vm->live->n_devices; i++) {
                _cleanup_free_ char *p = NULL;
                if (qemu_vm_console_socket_path(vm, vm->live->devices[i], &p) >= 0)
                        (void) unlink(p);
        }
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_free_ char *p = NULL;
                if (vm_path(vm, suffixes[i], &p) >= 0)
                        (void) unlink(p);
        }
}

/* Runtime files live as long as the process (a tmpfs in /run, normally): replaced atomically, without
 * the cost of fsync. */
static int write_runtime_file(const char *path, const char *contents) {
        _cleanup_free_ char *tmp = NULL;
        size_t n = strlen(contents);
        ssize_t w;
        int fd;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        w = write(fd, contents, n);
        if (w != (ssize_t) n) {
                int e = w < 0 ? errno : EIO;
                close(fd);
                (void) unlink(tmp);
                return -e;
        }
        close(fd);
        if (rename(tmp, path) < 0) {
                int e = errno;
                (void) unlink(tmp);
                return -e;
        }
        return 0;
}

int qemu_vm_plug_write(QemuVm *vm, const char *xml) {
        _cleanup_free_ char *path = NULL;

        if (vm_path(vm, "plug", &path) < 0)
                return -ENOMEM;
        return write_runtime_file(path, xml);
}

int qemu_vm_plug_read(QemuVm *vm, char **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        *ret = NULL;
        if (vm_path(vm, "plug", &path) < 0)
                return -ENOMEM;
        r = read_full_file(path, 0, ret, NULL);
        return r == -ENOENT ? 0 : r;
}

void qemu_vm_plug_remove(QemuVm *vm) {
        _cleanup_free_ char *path = NULL;

        if (vm_path(vm, "plug", &path) >= 0 && unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove '%s', ignoring: %m", path);
}

int qemu_vm_save(QemuVm *vm) {
        _cleanup_free_ char *xml = NULL, *xml_path = NULL, *state_path = NULL, *state = NULL;
        int r;

        r = domain_def_format(vm->live, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return r;
        if (vm_path(vm, "xml", &xml_path) < 0 || vm_path(vm, "state", &state_path) < 0)
                return -ENOMEM;
        r = write_runtime_file(xml_path, xml);
        if (r < 0)
                return r;
        if (asprintf(&state, "pid=%d\nstart_time=%" PRIu64 "\nid=%u\npaused=%d\n", (int) vm->pid, vm->start_time,
                     vm->id, vm->state == DOMAIN_PAUSED) < 0)
                return -ENOMEM;
        return write_runtime_file(state_path, state);
}

static bool startswith_qemu(const char *s) {
        return strncmp(s, "qemu-system-", strlen("qemu-system-")) == 0 && strstr(s, ": ");
}

char *qemu_vm_log_tail(const char *log_path, long offset) {
        _cleanup_free_ char *text = NULL;
        char *line = NULL, *p, *end;
        size_t size;

        if (!log_path || read_full_file(log_path, 0, &text, &size) < 0 || (size_t) offset >= size)
                return NULL;
        /* The last non-empty line. */
        end = text + size;
        while (end > text + offset && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
                end--;
        *end = 0;
        p = strrchr(text + offset, '\n');
        p = p ? p + 1 : text + offset;
        /* "2026-11-27T07:40:00.123456Z qemu-system-x86_64: -device x: ..." -> "-device x: ..." */
        if (*p >= '0' && *p <= '9' && strchr(p, ' '))
                p = strchr(p, ' ') + 1;
        if (startswith_qemu(p))
                p = strstr(p, ": ") + 2;
        if (*p)
                line = strdup(p);
        return line;
}

static void on_monitor_event(QemuMonitor *mon, const char *name, struct json_object *data, void *userdata) {
        QemuVm *vm = userdata;
        if (vm->cfg.cb.event)
                vm->cfg.cb.event(vm, name, data, vm->cfg.userdata);
}

static void on_monitor_closed(QemuMonitor *mon, void *userdata) {
        QemuVm *vm = userdata;
        /* The process exit (pidfd) tells the rest. */
        log_debug("QEMU monitor of %s closed.", vm->uuid);
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QemuVm *vm = userdata;

        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        host_process_reap(vm->pid);
        vm->exited = true;
        log_debug("QEMU process %d (domain %s) exited.", (int) vm->pid, vm->uuid);
        if (vm->cfg.cb.exited)
                vm->cfg.cb.exited(vm, vm->cfg.userdata);
        return 0;
}

static int watch_process(QemuVm *vm) {
        int r;

        vm->pidfd = host_process_open_fd(vm->pid);
        if (vm->pidfd < 0)
                return vm->pidfd;
        r = sd_event_add_io(vm->cfg.event, &vm->pid_source, vm->pidfd, EPOLLIN, on_pidfd, vm);
        return r;
}

/* Appends our note about this start to the log; returns the offset where QEMU's output begins. */
static int open_log(QemuVm *vm, const char *name, const QemuArgv *argv, int *ret_fd, long *ret_offset) {
        StrBuf b = STRBUF_NULL;
        _cleanup_free_ char *line = NULL;
        char stamp[64];
        time_t now = time(NULL);
        struct tm tm;
        int fd;
        off_t off;

        if (asprintf(&vm->log_path, "%s/%s.log", vm->cfg.log_dir, name) < 0)
                return -ENOMEM;
        fd = open(vm->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
        strbuf_appendf(&b, "%s UTC: starting domain '%s' (%s):", stamp, name, vm->uuid);
        for (size_t i = 0; i < argv->n; i++)
                strbuf_appendf(&b, " %s", argv->v[i]);
        strbuf_append(&b, "\n");
        line = strbuf_steal(&b);
        if (line)
                (void) !write(fd, line, strlen(line));
        off = lseek(fd, 0, SEEK_END);
        *ret_fd = fd;
        *ret_offset = off < 0 ? 0 : (long) off;
        return 0;
}

static int edit_device(DomainDef *live, size_t i, const char *child, const char *attr, const char *value,
                       const char *self_attr, const char *self_value);

/* A new tap for interface i, named in the live definition (<target dev=>); its descriptor in *ret_fd. */
static int tap_create(QemuVm *vm, size_t i, const ConfNode *node, int *ret_fd, VbError *reterr) {
        _cleanup_free_ char *name = qemu_interface_tap_name(node);
        int r;

        if (!name)
                return -ENOMEM;
        r = host_tap_create(name, ret_fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create tap '%s': %s", name,
                                    strerror(-r));
        r = edit_device(vm->live, i, "target", "dev", name, NULL, NULL);
        if (r < 0) {
                close(*ret_fd);
                *ret_fd = -1;
        }
        return r;
}

/* A virtio console or channel or a parallel port with a pty: the socket QEMU listens on for it (*fd stays
 * -1 for other devices). */
static int console_socket_create(QemuVm *vm, const DeviceDef *dev, int *fd, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        int r = qemu_vm_console_socket_path(vm, dev, &path);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = socket_listen_unix(path, 4, fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create the console socket '%s': %s",
                                    path, strerror(-r));
        /* Never blocking: OpenConsole empties its backlog on a copy of it (qemu-console.c). */
        if (fcntl(*fd, F_SETFL, O_NONBLOCK) < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to make the console socket '%s' "
                                    "non-blocking: %m", path);
        return 0;
}

/* The descriptors QEMU inherits: [0] the monitor socket, [1 + i] the macvtap or tap of device i, or the
 * socket it listens on for a virtio console or channel or a parallel port (or -1), all made here. The names of the links go into the
 * live definition (<target dev=>). */
static int macvtaps_create(QemuVm *vm, int **ret_fds, size_t *ret_n, int monitor_fd, VbError *reterr) {
        size_t n = vm->live->n_devices + 1;
        int *fds = new0(int, n);
        int r;

        if (!fds)
                return -ENOMEM;
        fds[0] = monitor_fd;
        for (size_t i = 1; i < n; i++)
                fds[i] = -1;
        *ret_fds = fds;
        *ret_n = n;
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                _cleanup_(conf_node_freep) ConfNode *node = NULL;
                _cleanup_free_ char *name = NULL;
                const char *lower, *mode, *want;

                if (vm->live->devices[i]->kind == DEVICE_CONSOLE || vm->live->devices[i]->kind == DEVICE_CHANNEL ||
                    vm->live->devices[i]->kind == DEVICE_PARALLEL) {
                        r = console_socket_create(vm, vm->live->devices[i], &fds[1 + i], reterr);
                        if (r < 0)
                                goto fail;
                        continue;
                }
                if (vm->live->devices[i]->kind != DEVICE_INTERFACE)
                        continue;
                r = qemu_device_node(vm->live->devices[i], &node);
                if (r < 0)
                        return r;
                if (qemu_interface_is_tap(node))
                        r = tap_create(vm, i, node, &fds[1 + i], reterr);
                else if (qemu_interface_direct(node, &lower, &mode, &want) <= 0)
                        continue;
                else {
                        r = qemu_vm_macvtap_create(vm, vm->live->devices[i], &name, &fds[1 + i], reterr);
                        if (r >= 0)
                                r = edit_device(vm->live, i, "target", "dev", name, NULL, NULL);
                }
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        for (size_t k = 1; k < n; k++)
                if (fds[k] >= 0)
                        close(fds[k]);
        qemu_vm_remove_files(vm);
        return r;
}

/* Whether /dev/vfio/<group> belongs to one of the PCI functions the live definition passes through. */
static bool vfio_group_is_ours(const QemuVm *vm, const char *group) {
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                DeviceHostSource src;
                char link[128], target[PATH_MAX];
                const char *base;
                ssize_t n;

                if (device_def_get_host_source(vm->live->devices[i], &src) < 0 ||
                    (src.kind != DEVICE_HOST_SOURCE_PCI && src.kind != DEVICE_HOST_SOURCE_NET_PCI))
                        continue;
                snprintf(link, sizeof link, "/sys/bus/pci/devices/%04x:%02x:%02x.%x/iommu_group", src.domain, src.bus,
                         src.slot, src.function);
                n = readlink(link, target, sizeof target - 1);
                if (n <= 0)
                        continue;
                target[n] = 0;
                base = strrchr(target, '/');
                if (streq(base ? base + 1 : target, group))
                        return true;
        }
        return false;
}

/* The device nodes QEMU's private /dev gets: KVM when usable, and VFIO's container and the groups of the
 * domain's own host devices when the host has them (a device hot-plugged later finds no node: VFIO
 * hot-plug into a running, confined QEMU is not supported yet). */
static void dev_nodes(const QemuVm *vm, HostDevNode *nodes, char (*names)[32], size_t max, size_t *ret_n) {
        static const char * const candidates[] = { "kvm", "vfio/vfio" };
        size_t n = 0;
        struct stat st;
        DIR *d;

        for (size_t i = 0; i < ELEMENTSOF(candidates) && n < max; i++) {
                char path[64];
                if (i == 0 && !vm->cfg.kvm_usable)
                        continue;
                snprintf(path, sizeof path, "/dev/%s", candidates[i]);
                if (stat(path, &st) >= 0 && S_ISCHR(st.st_mode))
                        nodes[n++] = (HostDevNode) { .name = candidates[i], .major = major(st.st_rdev),
                                                     .minor = minor(st.st_rdev), .owned = true };
        }
        d = opendir("/dev/vfio");
        for (struct dirent *de; d && (de = readdir(d)) && n < max;) {
                char path[300];
                if (de->d_name[0] < '0' || de->d_name[0] > '9' || strlen(de->d_name) > 20 ||
                    !vfio_group_is_ours(vm, de->d_name))
                        continue;
                snprintf(path, sizeof path, "/dev/vfio/%s", de->d_name);
                if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode))
                        continue;
                snprintf(names[n], sizeof names[n], "vfio/%.20s", de->d_name);
                nodes[n] = (HostDevNode) { .name = names[n], .major = major(st.st_rdev), .minor = minor(st.st_rdev),
                                           .owned = true };
                n++;
        }
        if (d)
                closedir(d);
        *ret_n = n;
}

static int spawn_qemu(QemuVm *vm, const QemuCommand *cmd, int log_fd, const int *keep_fds, size_t n_keep_fds) {
        HostDevNode nodes[64];
        char names[64][32];
        const char *hide[32];
        HostConfinement c;
        HostSpawn s;
        int r;

        if (vm->cfg.confinement) {
                c = *vm->cfg.confinement;
                host_confinement_keep_program(&c, cmd->argv.v[0], hide, ELEMENTSOF(hide));
                dev_nodes(vm, nodes, names, ELEMENTSOF(nodes), &c.n_dev_nodes);
                c.dev_nodes = nodes;
        }
        r = host_process_spawn_held((const char * const *) cmd->argv.v, log_fd, keep_fds, n_keep_fds,
                                    vm->cfg.confinement ? &c : NULL, &s);
        if (r < 0)
                return r;
        /* Recorded before QEMU runs: a virtbusd killed from here on finds it again (paused), one killed
         * before leaves no QEMU behind (a held child exits when we die). */
        vm->pid = s.pid;
        (void) host_process_start_time(vm->pid, &vm->start_time);
        r = qemu_vm_save(vm);
        if (r < 0) {
                host_process_spawn_abandon(&s);
                return r;
        }
        return host_process_spawn_release(&s);
}

/* The device index of the guest agent's channel; -1 if none. */
static ssize_t agent_channel(const DomainDef *def) {
        for (size_t i = 0; i < def->n_devices; i++)
                if (device_channel_is_guest_agent(def->devices[i]))
                        return (ssize_t) i;
        return -1;
}

/* The socket QEMU listens on for the guest agent when the definition has its channel (in virtbusd's
 * runtime directory, root's alone), or -1. virtbusd connects to it after the start and again after a
 * restart of its own (qemu_vm_agent_connect): a socket pair's end would be lost with the process. */
static int agent_listen(const QemuVm *vm, int *ret_fd, VbError *reterr) {
        _cleanup_free_ char *path = NULL;
        int r;

        *ret_fd = -1;
        if (agent_channel(vm->live) < 0)
                return 0;
        if (vm_path(vm, "agent", &path) < 0)
                return -ENOMEM;
        r = socket_listen_unix(path, 1, ret_fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create the guest agent's socket '%s': %s",
                                    path, strerror(-r));
        return 0;
}

int qemu_vm_agent_connect(QemuVm *vm, const char *alias) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *path = NULL, *a = NULL;
        int fd, r;

        if (agent_channel(vm->live) < 0 || !alias)
                return 0;
        if (vm_path(vm, "agent", &path) < 0 || !(a = strdup(alias)))
                return -ENOMEM;
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* QEMU listens already: this never waits (QEMU accepts from its own loop). */
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = qemu_agent_new(vm->cfg.event, fd, &vm->agent); /* takes fd, also on failure */
        if (r < 0)
                return r;
        free(vm->agent_alias);
        vm->agent_alias = TAKE_PTR(a);
        return 1;
}

static int keep_fd(int **fds, size_t *n, int fd) {
        int *p;

        if (fd < 0)
                return 0;
        p = reallocarray(*fds, *n + 1, sizeof(int));
        if (!p)
                return -ENOMEM;
        p[(*n)++] = fd;
        *fds = p;
        return 0;
}

/* virtbusd's connection to the agent's socket becomes vm->agent. */
static void agent_setup(QemuVm *vm, const QemuCommand *cmd) {
        ssize_t i = agent_channel(vm->live);
        int r;

        if (i < 0 || (size_t) i >= cmd->n_aliases)
                return;
        r = qemu_vm_agent_connect(vm, cmd->aliases[i]);
        if (r < 0)
                log_warning_errno(r, "Failed to connect to the guest agent channel of domain %s, ignoring: %m", vm->uuid);
}

/* Runs QEMU for vm->live, paused (-S). Nothing is left behind on failure. */
static int vm_spawn(QemuVm *vm, const QemuFiles *files, QemuCommand *cmd, long *ret_log_offset, VbError *reterr) {
        const char *name = domain_def_get_name(vm->live);
        _cleanup_free_ char *sock = NULL;
        _cleanup_free_ int *keep_fds = NULL;
        size_t n_keep_fds = 0, n_dev_fds;
        int listen_fd = -1, log_fd = -1, agent_fd = -1, r;

        if (vm_path(vm, "sock", &sock) < 0)
                return -ENOMEM;
        r = socket_listen_unix(sock, 4, &listen_fd);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create the monitor socket '%s': %s",
                                    sock, strerror(-r));
        r = macvtaps_create(vm, &keep_fds, &n_keep_fds, listen_fd, reterr);
        n_dev_fds = n_keep_fds;
        if (r >= 0)
                r = agent_listen(vm, &agent_fd, reterr);
        if (r >= 0)
                r = qemu_command_build(vm->live,
                                       &(QemuCommandParams) { .emulator = vm->cfg.emulator, .monitor_fd = listen_fd,
                                                              .kvm_usable = vm->cfg.kvm_usable,
                                                              .tap_fds = keep_fds + 1, .n_tap_fds = n_dev_fds - 1,
                                                              .files = files, .agent_fd = agent_fd },
                                       cmd, reterr);
        if (r >= 0 && vm->cfg.incoming_defer) {
                qemu_argv_add(&cmd->argv, "-incoming");
                qemu_argv_add(&cmd->argv, "defer");
        }
        if (r >= 0)
                r = qemu_files_keep_fds(files, &keep_fds, &n_keep_fds);
        if (r >= 0)
                r = keep_fd(&keep_fds, &n_keep_fds, agent_fd);
        if (r >= 0)
                r = open_log(vm, name, &cmd->argv, &log_fd, ret_log_offset);
        if (r >= 0) {
                r = spawn_qemu(vm, cmd, log_fd, keep_fds, n_keep_fds);
                if (r < 0)
                        vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to run '%s': %s", vm->cfg.emulator,
                                     strerror(-r));
        }
        /* QEMU has its copies (or failed): ours go (the files' with them, by the caller). */
        for (size_t i = 1; keep_fds && i < n_dev_fds; i++)
                if (keep_fds[i] >= 0)
                        close(keep_fds[i]);
        close(listen_fd);
        if (log_fd >= 0)
                close(log_fd);
        if (agent_fd >= 0)
                close(agent_fd);
        if (r < 0) {
                qemu_vm_remove_files(vm); /* the socket and the macvtaps */
                return vb_error_is_set(reterr) ? r
                                               : vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                                              "Failed to start domain '%s': %s", name, strerror(-r));
        }
        log_debug("Started QEMU for domain '%s' as process %d.", name, (int) vm->pid);
        (void) host_process_start_time(vm->pid, &vm->start_time);
        return 0;
}

/* Taps up and into their bridges; their names into the live definition. */
static int vm_setup_taps(QemuVm *vm, const QemuCommand *cmd, char **ret_error) {
        for (size_t i = 0; i < cmd->n_taps; i++) {
                const QemuTap *t = &cmd->taps[i];
                int r = host_tap_attach(t->ifname, t->bridge);

                if (r < 0) {
                        if (asprintf(ret_error, "Failed to set up tap '%s'%s%s: %s", t->ifname, t->bridge ? " on bridge " : "",
                                     strempty(t->bridge), strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
                log_notice("Domain '%s': tap '%s' up%s%s.", domain_def_get_name(vm->live), t->ifname,
                           t->bridge ? " in bridge " : "", strempty(t->bridge));
                if (t->device < vm->live->n_devices)
                        (void) edit_device(vm->live, t->device, "target", "dev", t->ifname, NULL, NULL);
        }
        return 0;
}

/* A start in progress: first the host's part in a worker thread (the files opened with their owner's
 * rights, taps and macvtaps, sockets, the spawn: start_work), then, on the loop, QEMU runs paused (-S)
 * while its monitor opens, then the command list that finishes the start (VNC password, the live state,
 * cont) runs. */
struct QemuVmStart {
        QemuVm *vm;
        QemuCommand cmd;
        bool paused;
        size_t live_idx[3];
        QemuVmStartDone done;
        void *userdata;
        /* For the worker thread: what it reads (copies, or the caller's own_path data, which stays until
         * done), and what it found. While in_worker, the thread owns vm->live and the VM's files. */
        DomainAccess access;
        bool (*own_path)(const char *path, void *userdata);
        void *own_userdata;
        bool in_worker;
        char *abort_why; /* qemu_vm_start_abort came while the thread had it */
        int r;
        VbError error;
        long log_offset;
};

static void vm_start_free(QemuVmStart *st) {
        if (!st)
                return;
        qemu_command_done(&st->cmd);
        domain_access_done(&st->access);
        vb_error_free(&st->error);
        free(st->abort_why);
        free(st);
}

/* Ends the start: done hears r (and e), then the start is forgotten. */
static void vm_start_finish(QemuVm *vm, int r, const VbError *e) {
        QemuVmStart *st = vm->start;

        vm->start = NULL;
        st->done(vm, r, e, st->userdata);
        vm_start_free(st);
}

/* Fails the start: kills what runs, and says why in QEMU's words when it left any. */
static void vm_start_fail(QemuVm *vm, const char *fallback, VbErrorCode code) {
        const char *name = domain_def_get_name(vm->live);
        _cleanup_free_ char *tail = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        vm->destroying = true;
        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        vm->mon = qemu_monitor_free(vm->mon);
        /* Nothing to wait for: a QEMU that failed to start, or does not answer, is not asked to end. */
        if (vm->pid > 0 && !vm->exited)
                (void) host_process_terminate(vm->pid, vm->pidfd, 0);
        vm->exited = true;
        qemu_vm_remove_files(vm);
        tail = qemu_vm_log_tail(vm->log_path, vm->log_offset);
        if (code == VB_ERROR_TIMEOUT)
                r = vb_error_set(&e, code, "QEMU failed to start domain '%s': %s", name, fallback ?: "no answer");
        else
                r = vb_error_set(&e, code, "QEMU failed to start domain '%s': %s", name,
                                 tail ?: fallback ?: "it exited");
        log_warning("%s", e.message ?: "QEMU failed to start");
        vm_start_finish(vm, r, &e);
        vb_error_free(&e);
}

void qemu_vm_start_abort(QemuVm *vm, const char *why) {
        if (!vm->start)
                return;
        if (vm->start->in_worker) {
                /* The thread has it: the start fails once it is back (start_work_done). */
                if (!vm->start->abort_why)
                        vm->start->abort_why = strdup(why ?: "aborted");
                return;
        }
        vm_start_fail(vm, why, VB_ERROR_OPERATION_FAILED);
}

static void on_start_seq_done(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuVm *vm = userdata;
        QemuVmStart *st = vm->start;

        if (!st)
                return;
        if (r < 0) {
                vm_start_fail(vm, e ? e->message : NULL, e ? e->code : VB_ERROR_OPERATION_FAILED);
                return;
        }
        (void) qemu_vm_seq_apply_live(vm, seq, st->live_idx, st->cmd.aliases, st->cmd.n_aliases);
        vm->state = st->paused ? DOMAIN_PAUSED : DOMAIN_RUNNING;
        r = qemu_vm_save(vm);
        if (r < 0)
                log_warning_errno(r, "Failed to save the state of domain '%s'; a restarted virtbusd will not "
                                  "find it: %m", domain_def_get_name(vm->live));
        vm_start_finish(vm, 0, NULL);
}

/* The monitor is ready: taps, then the commands that finish the start, in one list. */
static void on_start_monitor(QemuMonitor *mon, int r, const char *error, void *userdata) {
        QemuVm *vm = userdata;
        QemuVmStart *st = vm->start;
        _cleanup_free_ char *err = NULL;
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        VbError e = VB_ERROR_NULL;

        if (!st)
                return;
        if (r < 0) {
                vm_start_fail(vm, error, r == -ETIMEDOUT ? VB_ERROR_TIMEOUT : VB_ERROR_OPERATION_FAILED);
                return;
        }
        r = vm_setup_taps(vm, &st->cmd, &err);
        if (r < 0) {
                vm->log_offset = LONG_MAX; /* QEMU said nothing about this */
                vm_start_fail(vm, err, VB_ERROR_OPERATION_FAILED);
                return;
        }
        seq = qemu_seq_new(vm);
        if (!seq) {
                vm_start_fail(vm, strerror(ENOMEM), VB_ERROR_OPERATION_FAILED);
                return;
        }
        if (st->cmd.vnc_password) {
                struct json_object *args = json_object_new_object();
                json_object_object_add(args, "protocol", json_object_new_string("vnc"));
                json_object_object_add(args, "password", json_object_new_string(st->cmd.vnc_password));
                (void) qemu_seq_add(seq, "set the VNC password", "set_password", args);
        }
        /* What QEMU chose (addresses, ptys, the VNC port) is read before the guest runs. */
        qemu_vm_seq_add_live_queries(vm, seq, true, st->live_idx);
        if (!st->paused)
                (void) qemu_seq_add(seq, "start the virtual CPUs", "cont", NULL);
        r = qemu_seq_run(TAKE_PTR(seq), qemu_vm_command_timeout(vm), on_start_seq_done, vm, &e);
        if (r < 0) {
                vm->log_offset = LONG_MAX;
                vm_start_fail(vm, e.message ?: strerror(-r), VB_ERROR_OPERATION_FAILED);
        }
        vb_error_free(&e);
}

static int open_monitor_async(QemuVm *vm) {
        static const QemuMonitorCallbacks cb = { .event = on_monitor_event, .closed = on_monitor_closed };
        _cleanup_free_ char *path = NULL;

        if (vm_path(vm, "sock", &path) < 0)
                return -ENOMEM;
        return qemu_monitor_open_async(vm->cfg.event, path, vm->pidfd, QEMU_MONITOR_TIMEOUT_USEC, &cb, vm,
                                       on_start_monitor, &vm->mon);
}

int qemu_vm_start(const QemuVmConfig *cfg, const DomainDef *def, const DomainAccess *access,
                  bool (*own_path)(const char *path, void *userdata), void *userdata, unsigned id, bool paused,
                  QemuVmStartDone done, void *done_userdata, QemuVm **ret) {
        _cleanup_(qemu_vm_freep) QemuVm *vm = NULL;
        QemuVmStart *st;
        int r;

        vm = vm_new(cfg, domain_def_uuid(def).s);
        if (!vm)
                return -ENOMEM;
        vm->id = id;
        st = new0(QemuVmStart, 1);
        if (!st)
                return -ENOMEM;
        *st = (QemuVmStart) { .vm = vm, .paused = paused, .done = done, .userdata = done_userdata,
                              .own_path = own_path, .own_userdata = userdata };
        vm->start = st;
        r = domain_access_copy(access, &st->access);
        if (r < 0)
                return r;
        /* The command is built from the live copy, so that device indices (aliases) match it. */
        r = domain_def_copy(def, &vm->live);
        if (r < 0)
                return r;
        domain_def_set_id(vm->live, id);
        *ret = TAKE_PTR(vm);
        return 0;
}

/* In the worker thread: everything the host does before QEMU runs. It touches only vm (which the loop
 * leaves alone while vm->start->in_worker) and its own files; nothing is left behind on failure. */
static void start_work(void *userdata) {
        QemuVmStart *st = userdata;
        QemuVm *vm = st->vm;
        _cleanup_(qemu_files_done) QemuFiles files = {};
        int r;

        r = mkdir_p(vm->cfg.runtime_dir, 0700);
        if (r >= 0)
                r = mkdir_p(vm->cfg.log_dir, 0700);
        if (r < 0) {
                st->r = vb_error_set(&st->error, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s",
                                     vm->cfg.runtime_dir, strerror(-r));
                return;
        }
        /* Every host file, opened with its owner's rights: QEMU gets descriptors, never a path. */
        r = qemu_files_open(vm->live, &st->access, st->own_path, st->own_userdata, &files, &st->error);
        if (r >= 0) {
                vm->next_fdset = files.next_fdset;
                r = vm_spawn(vm, &files, &st->cmd, &st->log_offset, &st->error);
        }
        if (r >= 0) {
                /* From here on a restarted virtbusd finds it (paused, if we die before cont). */
                vm->state = DOMAIN_PAUSED;
                (void) qemu_vm_save(vm);
        }
        st->r = r;
}

/* Back on the loop: QEMU runs (paused), or nothing does and the start fails with what the thread found. */
static void start_work_done(void *userdata, bool cancelled) {
        QemuVmStart *st = userdata;
        QemuVm *vm = st->vm;
        const char *name = domain_def_get_name(vm->live);
        VbError e = VB_ERROR_NULL;
        int r;

        st->in_worker = false;
        if (cancelled) {
                r = vb_error_set(&e, VB_ERROR_OPERATION_FAILED, "Failed to start domain '%s': the service is stopping",
                                 name);
                vm_start_finish(vm, r, &e);
                vb_error_free(&e);
                return;
        }
        if (st->r < 0) {
                if (!vb_error_is_set(&st->error))
                        (void) vb_error_set(&st->error, VB_ERROR_OPERATION_FAILED, "Failed to start domain '%s': %s",
                                            name, strerror(-st->r));
                vm_start_finish(vm, st->r, &st->error);
                return;
        }
        vm->log_offset = st->log_offset;
        if (st->abort_why) {
                vm->log_offset = LONG_MAX; /* QEMU said nothing about this */
                vm_start_fail(vm, st->abort_why, VB_ERROR_OPERATION_FAILED);
                return;
        }
        agent_setup(vm, &st->cmd);
        r = watch_process(vm);
        if (r >= 0)
                r = open_monitor_async(vm);
        if (r < 0) {
                vm->log_offset = LONG_MAX;
                vm_start_fail(vm, strerror(-r), VB_ERROR_OPERATION_FAILED);
        }
}

int qemu_vm_start_run(QemuVm *vm, Worker *worker, VbError *reterr) {
        int r;

        assert(vm->start && !vm->start->in_worker);
        r = worker_submit(worker, start_work, start_work_done, vm->start);
        if (r == -EAGAIN)
                return vb_error_set(reterr, VB_ERROR_LIMITS_EXCEEDED, "Too many domains are starting at once; "
                                    "'%s' was not started, try again shortly", domain_def_get_name(vm->live));
        if (r < 0)
                return r;
        vm->start->in_worker = true;
        return 0;
}

static int read_state(const char *path, pid_t *ret_pid, uint64_t *ret_start, unsigned *ret_id,
                      DomainState *ret_state) {
        _cleanup_free_ char *s = NULL;
        int pid = 0, paused = 0;
        unsigned long long start = 0;
        unsigned id = 0;
        int r;

        r = read_full_file(path, 0, &s, NULL);
        if (r < 0)
                return r;
        /* paused= came later: a file without it says running. */
        if (sscanf(s, "pid=%d\nstart_time=%llu\nid=%u\npaused=%d", &pid, &start, &id, &paused) < 3 || pid <= 1)
                return -EBADMSG;
        *ret_pid = pid;
        *ret_start = start;
        *ret_id = id;
        *ret_state = paused ? DOMAIN_PAUSED : DOMAIN_RUNNING;
        return 0;
}

/* The macvtaps of a running VM, from its live definition. */
static int remember_macvtaps(QemuVm *vm) {
        for (size_t i = 0; i < vm->live->n_devices; i++) {
                _cleanup_(conf_node_freep) ConfNode *node = NULL;
                const char *lower, *mode, *name;
                int r;

                if (vm->live->devices[i]->kind != DEVICE_INTERFACE)
                        continue;
                r = qemu_device_node(vm->live->devices[i], &node);
                if (r < 0)
                        return r;
                if (qemu_interface_direct(node, &lower, &mode, &name) <= 0 || !name)
                        continue;
                r = qemu_vm_macvtap_remember(vm, name);
                if (r < 0)
                        return r;
        }
        return 0;
}

enum { RECONNECT_STATUS, RECONNECT_FDSETS, RECONNECT_PERIPHERALS, RECONNECT_BLOCKS, _RECONNECT_MAX };

static void reconnect_finish(QemuVm *vm, int r, const char *error, DomainState state, struct json_object *peripherals,
                             struct json_object *fdsets, struct json_object *blocks) {
        QemuVmReconnected done = vm->reconnected;

        vm->connecting = false;
        vm->reconnected = NULL;
        if (r < 0 && free_and_strdup(&vm->connect_error, error ?: strerror(-r)) < 0)
                log_oom();
        if (done)
                done(vm, r, error, state, peripherals, fdsets, blocks, vm->reconnected_userdata);
}

/* The first set number no set of QEMU's has. */
static unsigned fdset_after(struct json_object *sets) {
        unsigned next = 1;

        for (size_t i = 0; sets && json_object_is_type(sets, json_type_array) && i < json_object_array_length(sets);
             i++) {
                unsigned id = (unsigned) json_object_get_int(
                        qemu_json_get(json_object_array_get_idx(sets, i), "fdset-id"));
                if (id >= next)
                        next = id + 1;
        }
        return next;
}

static void on_reconnect_seq(QemuSeq *seq, int r, const VbError *e, void *userdata) {
        QemuVm *vm = userdata;
        struct json_object *status = qemu_seq_reply(seq, RECONNECT_STATUS);
        DomainState state = DOMAIN_PAUSED;
        const char *s;

        if (vm->destroying)
                return;
        if (r < 0) {
                reconnect_finish(vm, r, e ? e->message : NULL, vm->state, NULL, NULL, NULL);
                return;
        }
        s = qemu_json_string(status, "status") ?: "running";
        if (streq(s, "running"))
                state = DOMAIN_RUNNING;
        else if (streq(s, "shutdown"))
                vm->shutdown_seen = true;
        else if (streq(s, "guest-panicked"))
                vm->crashed = true;
        vm->next_fdset = fdset_after(qemu_seq_reply(seq, RECONNECT_FDSETS));
        reconnect_finish(vm, 0, NULL, state, qemu_seq_reply(seq, RECONNECT_PERIPHERALS),
                         qemu_seq_reply(seq, RECONNECT_FDSETS), qemu_seq_reply(seq, RECONNECT_BLOCKS));
}

static void on_reconnect_monitor(QemuMonitor *mon, int r, const char *error, void *userdata) {
        QemuVm *vm = userdata;
        _cleanup_(qemu_seq_freep) QemuSeq *seq = NULL;
        struct json_object *args;
        VbError e = VB_ERROR_NULL;

        if (r < 0) {
                vm->mon = qemu_monitor_free(vm->mon); /* unusable */
                reconnect_finish(vm, r, error, vm->state, NULL, NULL, NULL);
                return;
        }
        seq = qemu_seq_new(vm);
        args = json_object_new_object();
        if (!seq || !args) {
                json_object_put(args);
                reconnect_finish(vm, -ENOMEM, NULL, vm->state, NULL, NULL, NULL);
                return;
        }
        json_object_object_add(args, "path", json_object_new_string("/machine/peripheral"));
        (void) qemu_seq_add(seq, "query the state", "query-status", NULL);
        (void) qemu_seq_add_optional(seq, "query-fdsets", NULL);
        (void) qemu_seq_add_optional(seq, "qom-list", args);
        (void) qemu_seq_add_optional(seq, "query-block", NULL); /* the media in, for a cut update */
        r = qemu_seq_run(TAKE_PTR(seq), qemu_vm_command_timeout(vm), on_reconnect_seq, vm, &e);
        if (r < 0)
                reconnect_finish(vm, r, e.message, vm->state, NULL, NULL, NULL);
        vb_error_free(&e);
}

int qemu_vm_reconnect(const QemuVmConfig *cfg, const char *uuid, QemuVmReconnected done, void *userdata,
                      QemuVm **ret) {
        static const QemuMonitorCallbacks cb = { .event = on_monitor_event, .closed = on_monitor_closed };
        _cleanup_(qemu_vm_freep) QemuVm *vm = NULL;
        _cleanup_free_ char *state_path = NULL, *xml_path = NULL, *xml = NULL, *sock = NULL;
        int r;

        vm = vm_new(cfg, uuid);
        if (!vm)
                return -ENOMEM;
        if (vm_path(vm, "state", &state_path) < 0 || vm_path(vm, "xml", &xml_path) < 0 ||
            vm_path(vm, "sock", &sock) < 0)
                return -ENOMEM;
        r = read_state(state_path, &vm->pid, &vm->start_time, &vm->id, &vm->state);
        if (r >= 0)
                r = read_full_file(xml_path, 0, &xml, NULL);
        if (r >= 0)
                r = domain_def_parse_string(xml, 0, &vm->live, NULL);
        if (r >= 0)
                r = remember_macvtaps(vm);
        if (r < 0 || !host_process_is(vm->pid, vm->start_time)) {
                qemu_vm_remove_files(vm);
                return r < 0 ? r : -ESRCH;
        }
        if (asprintf(&vm->log_path, "%s/%s.log", cfg->log_dir, domain_def_get_name(vm->live)) < 0)
                return -ENOMEM;
        {
                struct stat st;
                vm->log_offset = stat(vm->log_path, &st) >= 0 ? (long) st.st_size : 0;
        }
        r = watch_process(vm);
        if (r < 0)
                return r;
        /* A QEMU that does not answer holds up neither the service's start nor the other domains. */
        vm->connecting = true;
        vm->reconnected = done;
        vm->reconnected_userdata = userdata;
        r = qemu_monitor_open_async(vm->cfg.event, sock, vm->pidfd, QEMU_MONITOR_TIMEOUT_USEC, &cb, vm,
                                    on_reconnect_monitor, &vm->mon);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(vm);
        return 0;
}

int qemu_vm_terminate(QemuVm *vm) {
        int r;

        vm->destroying = true;
        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        qemu_seq_abort_all(vm, "the domain was destroyed");
        vm->mon = qemu_monitor_free(vm->mon);
        r = vm->exited ? 0 : host_process_terminate(vm->pid, vm->pidfd, QEMU_TERM_GRACE_USEC);
        vm->exited = true;
        qemu_vm_remove_files(vm);
        return r;
}

static void terminate_done(QemuVm *vm, int r) {
        void (*gone)(QemuVm *vm, int r, void *userdata) = vm->gone;

        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        vm->kill_timer = sd_event_source_disable_unref(vm->kill_timer);
        vm->gone = NULL;
        if (r >= 0) {
                host_process_reap(vm->pid);
                vm->exited = true;
                qemu_vm_remove_files(vm);
        }
        if (gone)
                gone(vm, r, vm->gone_userdata); /* may free vm */
}

static int on_terminated(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        QemuVm *vm = userdata;

        log_debug("QEMU process %d (domain %s) ended%s.", (int) vm->pid, vm->uuid, vm->kill_sent ? " on SIGKILL" : "");
        terminate_done(vm, 0);
        return 0;
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        QemuVm *vm = userdata;
        int r;

        vm->kill_timer = sd_event_source_disable_unref(vm->kill_timer);
        if (vm->kill_sent) {
                log_warning("QEMU process %d of domain %s did not end even on SIGKILL.", (int) vm->pid, vm->uuid);
                terminate_done(vm, -ETIMEDOUT);
                return 0;
        }
        log_debug("QEMU process %d (domain %s) did not exit on SIGTERM, sending SIGKILL.", (int) vm->pid, vm->uuid);
        (void) kill(vm->pid, SIGKILL);
        vm->kill_sent = true;
        r = sd_event_add_time_relative(vm->cfg.event, &vm->kill_timer, CLOCK_MONOTONIC, QEMU_KILL_WAIT_USEC, 0,
                                       on_kill_timer, vm);
        if (r < 0)
                log_warning_errno(r, "Failed to wait for QEMU process %d, ignoring: %m", (int) vm->pid);
        return 0;
}

int qemu_vm_terminate_async(QemuVm *vm, void (*gone)(QemuVm *vm, int r, void *userdata), void *userdata) {
        int r;

        if (vm->exited || vm->pidfd < 0)
                return qemu_vm_terminate(vm) < 0 ? -ETIMEDOUT : 1;
        vm->destroying = true;
        vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
        qemu_seq_abort_all(vm, "the domain was destroyed");
        vm->mon = qemu_monitor_free(vm->mon);
        if (kill(vm->pid, SIGTERM) < 0 && errno == ESRCH) {
                terminate_done(vm, 0);
                return 1;
        }
        /* A stopped QEMU acts on SIGTERM only once it runs again. */
        (void) kill(vm->pid, SIGCONT);
        r = sd_event_add_io(vm->cfg.event, &vm->pid_source, vm->pidfd, EPOLLIN, on_terminated, vm);
        if (r >= 0)
                r = sd_event_add_time_relative(vm->cfg.event, &vm->kill_timer, CLOCK_MONOTONIC, QEMU_TERM_GRACE_USEC,
                                               0, on_kill_timer, vm);
        if (r < 0) {
                /* Cannot watch it: the bounded wait it is. */
                vm->pid_source = sd_event_source_disable_unref(vm->pid_source);
                return qemu_vm_terminate(vm) < 0 ? -ETIMEDOUT : 1;
        }
        vm->gone = gone;
        vm->gone_userdata = userdata;
        return 0;
}

/* Live definition ------------------------------------------------------------------------------ */

/* query-pci's devices of one bus (bus: its index in the definition, 0 the root), and those behind bridges:
 * a bridge's devices are listed once firmware numbered its bus (before that, as while paused at start,
 * they are not listed at all). The number firmware gave is the guest's; the definition's bus is the
 * index of the controller, which is in the bridge's id (pci.N). */
static void collect_pci(struct json_object *devices, unsigned bus, QemuPciSlot **slots, size_t *n, size_t *allocated) {
        size_t len = devices && json_object_is_type(devices, json_type_array) ? json_object_array_length(devices) : 0;

        for (size_t i = 0; i < len; i++) {
                struct json_object *d = json_object_array_get_idx(devices, i), *bridge;
                const char *id = qemu_json_string(d, "qdev_id");
                unsigned index;
                int k = 0;

                if (id && *id && GREEDY_REALLOC(*slots, *allocated, *n + 1))
                        (*slots)[(*n)++] = (QemuPciSlot) {
                                .qdev_id = id,
                                .bus = bus,
                                .slot = (unsigned) json_object_get_int(qemu_json_get(d, "slot")),
                                .function = (unsigned) json_object_get_int(qemu_json_get(d, "function")),
                        };
                bridge = qemu_json_get(d, "pci_bridge");
                if (!bridge)
                        continue;
                if (!id || sscanf(id, "pci.%u%n", &index, &k) != 1 || id[k] != 0)
                        /* Not one of ours: the guest's number is the best there is. */
                        index = (unsigned) json_object_get_int(
                                qemu_json_get(qemu_json_get(bridge, "bus"), "secondary"));
                collect_pci(qemu_json_get(bridge, "devices"), index, slots, n, allocated);
        }
}

int qemu_pci_slots(struct json_object *pci, QemuPciSlot **ret, size_t *ret_n) {
        QemuPciSlot *slots = NULL;
        size_t n = 0, allocated = 0;

        for (size_t b = 0; pci && json_object_is_type(pci, json_type_array) && b < json_object_array_length(pci); b++)
                collect_pci(qemu_json_get(json_object_array_get_idx(pci, b), "devices"), 0, &slots, &n, &allocated);
        *ret = slots;
        *ret_n = n;
        return 0;
}

/* Rewrites device i of the live definition through its XML tree. */
static int edit_device(DomainDef *live, size_t i, const char *child, const char *attr, const char *value,
                       const char *self_attr, const char *self_value) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        DeviceDef *nd = NULL;
        ConfNode *c;
        int r;

        r = device_def_to_node(live->devices[i], DEVICE_FORMAT_SECURE, &n);
        if (r < 0)
                return r;
        if (child) {
                c = conf_node_child(n, child) ?: conf_node_add(n, child);
                if (!c || conf_node_set_attr(c, attr, value) < 0)
                        return -ENOMEM;
        }
        if (self_attr && conf_node_set_attr(n, self_attr, self_value) < 0)
                return -ENOMEM;
        conf_node_sort(n);
        r = device_def_parse_node(TAKE_PTR(n), &nd, NULL);
        if (r < 0)
                return r;
        device_def_free(live->devices[i]);
        live->devices[i] = nd;
        return 0;
}

static void fill_chardev(DomainDef *live, size_t i, const char *alias, struct json_object *chardevs) {
        size_t len = chardevs ? json_object_array_length(chardevs) : 0;
        _cleanup_free_ char *label = NULL;

        if (asprintf(&label, "char%s", alias) < 0)
                return;
        for (size_t k = 0; k < len; k++) {
                struct json_object *c = json_object_array_get_idx(chardevs, k);
                const char *l = qemu_json_string(c, "label"), *f = qemu_json_string(c, "filename");

                if (l && f && streq(l, label) && strncmp(f, "pty:", 4) == 0)
                        (void) edit_device(live, i, "source", "path", f + 4, NULL, NULL);
        }
}

static bool live_has_graphics(const DomainDef *live) {
        for (size_t i = 0; i < live->n_devices; i++)
                if (live->devices[i]->kind == DEVICE_GRAPHICS)
                        return true;
        return false;
}

/* What query-pci, query-chardev and query-vnc said (each may be NULL), into the live definition. */
static int apply_live(QemuVm *vm, struct json_object *pci, struct json_object *chardevs, struct json_object *vnc,
                      char * const *aliases, size_t n_aliases) {
        _cleanup_free_ QemuPciSlot *slots = NULL;
        size_t n_slots = 0;
        DomainDef *live = vm->live;

        (void) qemu_pci_slots(pci, &slots, &n_slots);
        for (size_t i = 0; i < live->n_devices; i++) {
                DeviceDef *d = live->devices[i];
                const char *alias = i < n_aliases && aliases ? aliases[i] : d->alias;

                if (d->kind == DEVICE_GRAPHICS) {
                        if (qemu_json_string(vnc, "service"))
                                (void) edit_device(live, i, NULL, NULL, NULL, "port", qemu_json_string(vnc, "service"));
                        continue;
                }
                if (!alias)
                        continue;
                if (!streq_ptr(d->alias, alias) && free_and_strdup(&d->alias, alias) < 0)
                        return -ENOMEM;
                for (size_t k = 0; k < n_slots; k++)
                        if (streq(slots[k].qdev_id, alias) && d->address.type == DEVICE_ADDRESS_NONE) {
                                d->address.type = DEVICE_ADDRESS_PCI;
                                d->address.pci.domain = 0;
                                d->address.pci.bus = slots[k].bus;
                                d->address.pci.slot = slots[k].slot;
                                d->address.pci.function = slots[k].function;
                                d->address.pci.multifunction = -1;
                        }
                if (d->kind == DEVICE_SERIAL || d->kind == DEVICE_PARALLEL || d->kind == DEVICE_CONSOLE ||
                    d->kind == DEVICE_CHANNEL)
                        fill_chardev(live, i, alias, chardevs);
        }
        return 0;
}

void qemu_vm_seq_add_live_queries(QemuVm *vm, QemuSeq *seq, bool chardevs_too, size_t idx[3]) {
        idx[0] = qemu_seq_add_optional(seq, "query-pci", NULL);
        idx[1] = chardevs_too ? qemu_seq_add_optional(seq, "query-chardev", NULL) : SIZE_MAX;
        idx[2] = chardevs_too && live_has_graphics(vm->live) ? qemu_seq_add_optional(seq, "query-vnc", NULL) : SIZE_MAX;
}

int qemu_vm_seq_apply_live(QemuVm *vm, QemuSeq *seq, const size_t idx[3], char * const *aliases,
                           size_t n_aliases) {
        if (!qemu_seq_reply(seq, idx[0])) {
                log_warning("Failed to read the live state of domain %s from QEMU, ignoring.", vm->uuid);
                return 0;
        }
        return apply_live(vm, qemu_seq_reply(seq, idx[0]), qemu_seq_reply(seq, idx[1]), qemu_seq_reply(seq, idx[2]),
                          aliases, n_aliases);
}

uint64_t qemu_vm_command_timeout(const QemuVm *vm) {
        return vm->cfg.command_timeout_usec > 0 ? vm->cfg.command_timeout_usec : QEMU_COMMAND_TIMEOUT_USEC;
}
