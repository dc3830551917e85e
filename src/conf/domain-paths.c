/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-node.h"
#include "conf/device-conf.h"
#include "conf/domain-paths.h"

void domain_paths_done(DomainPaths *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].path);
                free(p->v[i].what);
        }
        free(p->v);
        *p = (DomainPaths) {};
}

static int add(DomainPaths *p, const char *path, DomainPathUse use, size_t device, DomainOsPath os, char *what) {
        DomainPath *e;

        if (!what)
                return -ENOMEM;
        if (!GREEDY_REALLOC(p->v, p->allocated, p->n + 1)) {
                free(what);
                return -ENOMEM;
        }
        e = &p->v[p->n];
        *e = (DomainPath) { .path = strdup(path), .use = use, .device = device, .os = os, .what = what };
        if (!e->path) {
                free(what);
                return -ENOMEM;
        }
        p->n++;
        return 0;
}

static char *whatf(const char *format, ...) _printf_(1, 2);
static char *whatf(const char *format, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

static int disk_paths(const ConfNode *n, size_t index, DomainPaths *p) {
        const char *type = conf_node_attr(n, "type") ?: "file";
        const char *device = conf_node_attr(n, "device") ?: "disk";
        const ConfNode *src = conf_node_child(n, "source"), *target = conf_node_child(n, "target");
        const char *path = NULL;
        bool ro;
        int r;

        if (!src)
                return 0;
        if (streq(type, "file"))
                path = conf_node_attr(src, "file");
        else if (streq(type, "block"))
                path = conf_node_attr(src, "dev");
        else if (streq(type, "dir"))
                path = conf_node_attr(src, "dir");
        if (!path)
                return 0;
        ro = conf_node_child(n, "readonly") || streq(device, "cdrom") || streq(device, "floppy");
        r = add(p, path, streq(type, "dir") ? DOMAIN_PATH_DIRECTORY : ro ? DOMAIN_PATH_READ : DOMAIN_PATH_READ_WRITE,
                index, 0, whatf("disk '%s'", target ? strempty(conf_node_attr(target, "dev")) : ""));
        /* The images below it (<backingStore>, a snapshot's overlays over them): read only. */
        for (const ConfNode *b = conf_node_child(n, "backingStore"); r >= 0 && b; b = conf_node_child(b, "backingStore")) {
                const char *btype = conf_node_attr(b, "type") ?: "file";
                const ConfNode *bsrc = conf_node_child(b, "source");
                const char *bpath = !bsrc ? NULL : streq(btype, "file") ? conf_node_attr(bsrc, "file") :
                                    streq(btype, "block") ? conf_node_attr(bsrc, "dev") : NULL;

                if (!bpath)
                        break;
                r = add(p, bpath, DOMAIN_PATH_READ, index, 0,
                        whatf("a backing image of disk '%s'", target ? strempty(conf_node_attr(target, "dev")) : ""));
        }
        return r;
}

static int chardev_paths(const ConfNode *n, const char *kind, size_t index, DomainPaths *p) {
        const char *type = conf_node_attr(n, "type");
        const ConfNode *src = conf_node_child(n, "source");
        const char *path = src ? conf_node_attr(src, "path") : NULL;
        const char *mode = src ? conf_node_attr(src, "mode") : NULL;
        DomainPathUse use;

        if (!type || !path)
                return 0;
        if (streq(type, "file"))
                use = streq_ptr(conf_node_attr(src, "append"), "on") ? DOMAIN_PATH_APPEND : DOMAIN_PATH_TRUNCATE;
        else if (streq(type, "pipe") || streq(type, "dev"))
                use = DOMAIN_PATH_READ_WRITE;
        else if (streq(type, "unix"))
                use = streq_ptr(mode, "connect") ? DOMAIN_PATH_SOCKET_CONNECT : DOMAIN_PATH_SOCKET_LISTEN;
        else
                return 0;
        return add(p, path, use, index, 0, whatf("%s (%s)", kind, type));
}

int device_def_host_paths(const DeviceDef *dev, size_t index, DomainPaths *ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        switch (dev->kind) {
        case DEVICE_DISK:
        case DEVICE_SERIAL:
        case DEVICE_PARALLEL:
        case DEVICE_CONSOLE:
        case DEVICE_CHANNEL:
                break;
        default:
                return 0;
        }
        r = device_def_to_node(dev, 0, &n);
        if (r < 0)
                return r;
        if (dev->kind == DEVICE_DISK)
                return disk_paths(n, index, ret);
        /* The guest agent's channel is a socket pair between QEMU and the service: no host path. */
        if (device_channel_is_guest_agent(dev))
                return 0;
        return chardev_paths(n, device_def_kind_name(dev), index, ret);
}

/* A <console> of target type 'serial' (the default) is the domain's first <serial>, when it has one. */
static bool console_is_serial(const DomainDef *def, const DeviceDef *console) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        const char *ttype;
        bool has_serial = false;

        for (size_t i = 0; i < def->n_devices; i++)
                has_serial = has_serial || def->devices[i]->kind == DEVICE_SERIAL;
        if (!has_serial || device_def_to_node(console, 0, &n) < 0)
                return false;
        ttype = conf_node_child(n, "target") ? conf_node_attr(conf_node_child(n, "target"), "type") : NULL;
        return !ttype || streq(ttype, "serial");
}

int domain_def_host_paths(const DomainDef *def, DomainPaths *ret) {
        _cleanup_(conf_node_freep) ConfNode *root = NULL;
        const ConfNode *os, *loader, *nvram;
        int r;

        r = domain_def_to_node(def, 0, &root);
        if (r < 0)
                return r;
        os = conf_node_child(root, "os");
        if (def->os.kernel && (r = add(ret, def->os.kernel, DOMAIN_PATH_READ, DOMAIN_PATH_NO_DEVICE,
                                       DOMAIN_OS_PATH_KERNEL, strdup("the kernel"))) < 0)
                return r;
        if (def->os.initrd && (r = add(ret, def->os.initrd, DOMAIN_PATH_READ, DOMAIN_PATH_NO_DEVICE,
                                       DOMAIN_OS_PATH_INITRD, strdup("the initrd"))) < 0)
                return r;
        loader = os ? conf_node_child(os, "loader") : NULL;
        if (def->os.loader && !isempty(def->os.loader)) {
                bool pflash = streq_ptr(conf_node_attr(loader, "type"), "pflash");
                bool rw = pflash && streq_ptr(conf_node_attr(loader, "readonly"), "no");
                r = add(ret, def->os.loader, rw ? DOMAIN_PATH_READ_WRITE : DOMAIN_PATH_READ, DOMAIN_PATH_NO_DEVICE,
                        pflash ? DOMAIN_OS_PATH_LOADER : DOMAIN_OS_PATH_BIOS, strdup("the firmware (<loader>)"));
                if (r < 0)
                        return r;
        }
        nvram = os ? conf_node_child(os, "nvram") : NULL;
        if (nvram) {
                const char *path = !isempty(nvram->text) ? nvram->text
                                                         : conf_node_child(nvram, "source")
                                                                   ? conf_node_attr(conf_node_child(nvram, "source"), "file")
                                                                   : NULL;
                const char *template = conf_node_attr(nvram, "template");
                if (path && (r = add(ret, path, DOMAIN_PATH_READ_WRITE, DOMAIN_PATH_NO_DEVICE, DOMAIN_OS_PATH_NVRAM,
                                     strdup("the NVRAM store (<nvram>)"))) < 0)
                        return r;
                if (template && (r = add(ret, template, DOMAIN_PATH_READ, DOMAIN_PATH_NO_DEVICE,
                                         DOMAIN_OS_PATH_NVRAM_TEMPLATE, strdup("the NVRAM template"))) < 0)
                        return r;
        }
        for (size_t i = 0; i < def->n_devices; i++) {
                if (def->devices[i]->kind == DEVICE_CONSOLE && console_is_serial(def, def->devices[i]))
                        continue; /* the first <serial> itself, listed there */
                r = device_def_host_paths(def->devices[i], i, ret);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Access ---------------------------------------------------------------------------------------- */

void domain_access_done(DomainAccess *a) {
        for (size_t i = 0; i < a->n_grants; i++)
                free(a->grants[i].path);
        free(a->grants);
        *a = (DomainAccess) {};
}

int domain_access_grant(DomainAccess *a, const char *path, uint32_t uid) {
        DomainPathGrant *g;

        for (size_t i = 0; i < a->n_grants; i++)
                if (streq(a->grants[i].path, path)) {
                        a->grants[i].uid = uid;
                        return 0;
                }
        g = realloc(a->grants, (a->n_grants + 1) * sizeof *g);
        if (!g)
                return -ENOMEM;
        a->grants = g;
        g[a->n_grants].path = strdup(path);
        if (!g[a->n_grants].path)
                return -ENOMEM;
        g[a->n_grants++].uid = uid;
        return 0;
}

int domain_access_copy(const DomainAccess *a, DomainAccess *ret) {
        DomainAccess c = { .owner = a->owner };

        for (size_t i = 0; i < a->n_grants; i++)
                if (domain_access_grant(&c, a->grants[i].path, a->grants[i].uid) < 0) {
                        domain_access_done(&c);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

uint32_t domain_access_uid_for(const DomainAccess *a, const char *path) {
        for (size_t i = 0; i < a->n_grants; i++)
                if (streq(a->grants[i].path, path))
                        return a->grants[i].uid;
        return a->owner;
}

static bool plain_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("/._-+,:@=", c);
}

int domain_access_format(const DomainAccess *a, StrBuf *b) {
        strbuf_appendf(b, "<?virtbus-owner uid=\"%u\"?>\n", a->owner);
        for (size_t i = 0; i < a->n_grants; i++) {
                strbuf_appendf(b, "<?virtbus-grant uid=\"%u\" path=\"", a->grants[i].uid);
                for (const char *c = a->grants[i].path; *c; c++)
                        if (plain_char(*c))
                                strbuf_append_n(b, c, 1);
                        else
                                strbuf_appendf(b, "%%%02X", (unsigned char) *c);
                strbuf_append(b, "\"?>\n");
        }
        return 0;
}

static int unhex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The uid="N" at s; advances *s past it. */
static int read_uid(const char **s, uint32_t *ret) {
        unsigned long v;
        char *end;

        if (strncmp(*s, "uid=\"", 5) != 0)
                return -EBADMSG;
        v = strtoul(*s + 5, &end, 10);
        if (end == *s + 5 || *end != '"' || v > UINT32_MAX)
                return -EBADMSG;
        *ret = (uint32_t) v;
        *s = end + 1;
        return 0;
}

int domain_access_parse(const char *text, DomainAccess *ret, const char **ret_rest) {
        DomainAccess a = {};
        const char *s = text;
        int r = 0;

        for (;;) {
                uint32_t uid;
                if (strncmp(s, "<?virtbus-owner ", 16) == 0) {
                        s += 16;
                        r = read_uid(&s, &a.owner);
                        if (r < 0 || strncmp(s, "?>", 2) != 0)
                                goto bad;
                        s += 2;
                } else if (strncmp(s, "<?virtbus-grant ", 16) == 0) {
                        _cleanup_free_ char *path = NULL;
                        size_t n = 0;
                        s += 16;
                        r = read_uid(&s, &uid);
                        if (r < 0 || strncmp(s, " path=\"", 7) != 0)
                                goto bad;
                        s += 7;
                        path = malloc(strcspn(s, "\"") + 1);
                        if (!path) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        for (; *s && *s != '"'; s++) {
                                if (*s == '%') {
                                        int hi = unhex(s[1]), lo = hi >= 0 ? unhex(s[2]) : -1;
                                        if (lo < 0)
                                                goto bad;
                                        path[n++] = (char) (hi << 4 | lo);
                                        s += 2;
                                } else
                                        path[n++] = *s;
                        }
                        path[n] = 0;
                        if (strncmp(s, "\"?>", 3) != 0 || n == 0 || strlen(path) != n)
                                goto bad;
                        s += 3;
                        r = domain_access_grant(&a, path, uid);
                        if (r < 0)
                                goto fail;
                } else
                        break;
                while (*s == '\n')
                        s++;
        }
        *ret = a;
        *ret_rest = s;
        return 0;
bad:
        r = -EBADMSG;
fail:
        domain_access_done(&a);
        return r;
}
