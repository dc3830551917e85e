/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What running domains took from the host, on disk: one file per domain,
 * <runtime>/hostdevs/<uuid>.leases, replaced atomically before each change to the host (the intent) and
 * after it (the result), removed once everything is given back. A restarted virtbusd reads them: leases of
 * domains that still run are kept for their stop; those of domains that stopped meanwhile are given back
 * at once. The text:
 *
 *   virtbus-hostdev-leases 1
 *   domain 0b3c...-uuid the domain's name
 *   lease 0000:03:10.0 detach=taken driver=igbvf vf=taken pf=enp3s0f0 index=0 mac=02:00:00:00:00:07 vlan=7
 *   end
 *
 * A file without its "end" line, or with anything else amiss, is ignored (logged): a damaged record must
 * never stop the service from starting.
 *
 * The record is runtime state, like the host changes it describes (a driver binding, a VF's MAC): it is
 * replaced atomically (rename) but not synced. A crash of virtbusd leaves the kernel's page cache, so a
 * restarted virtbusd reads the intent; a crash of the host, which alone could lose an unsynced file,
 * undoes the host changes too. So no sync is waited for on the event loop. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/hostdev-internal.h"
#include "core/manager.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"

#define HOSTDEV_STORE_MAGIC "virtbus-hostdev-leases 1"
#define HOSTDEV_STORE_SUFFIX ".leases"
/* No domain has this many host devices; a bigger file is not ours. */
#define HOSTDEV_STORE_MAX_SIZE (256U * 1024U)

static const char * const hostdev_step_table[_HOSTDEV_STEP_MAX] = {
        [HOSTDEV_STEP_NONE] = "none",
        [HOSTDEV_STEP_INTENT] = "intent",
        [HOSTDEV_STEP_TAKEN] = "taken",
};

DEFINE_STRING_TABLE_LOOKUP(hostdev_step, HostdevStep);

int hostdev_leases_format(const HostdevLeases *set, char **ret) {
        StrBuf b = STRBUF_NULL;
        char *text;

        strbuf_append(&b, HOSTDEV_STORE_MAGIC "\ndomain ");
        strbuf_append(&b, set->uuid);
        strbuf_append(&b, " ");
        /* The name is for the logs only: a line of its own kind, whatever it holds. */
        for (const char *c = strempty(set->name); *c; c++)
                strbuf_append_n(&b, (*c == '\n' || *c == '\r') ? " " : c, 1);
        strbuf_append(&b, "\n");
        for (size_t i = 0; i < set->n; i++) {
                const HostdevLease *l = &set->leases[i];
                char addr[HOST_PCI_ADDRESS_MAX];
                const uint8_t *m = l->old.mac;

                host_pci_address_format(&l->address, addr);
                strbuf_appendf(&b,
                               "lease %s detach=%s driver=%s vf=%s pf=%s index=%u "
                               "mac=%02x:%02x:%02x:%02x:%02x:%02x vlan=%u\n",
                               addr, hostdev_step_to_string(l->detach), l->driver ?: "-",
                               hostdev_step_to_string(l->vf), l->pf_ifname ?: "-", l->vf_index, m[0], m[1], m[2],
                               m[3], m[4], m[5], (unsigned) l->old.vlan);
        }
        strbuf_append(&b, "end\n");
        text = strbuf_steal(&b);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* "key=value" with this key: the value, or NULL. */
static const char *field(const char *token, const char *key) {
        size_t n = strlen(key);

        if (!token || strncmp(token, key, n) != 0 || token[n] != '=')
                return NULL;
        return token + n + 1;
}

static int dup_or_null(const char *v, char **ret) {
        if (streq(v, "-")) {
                *ret = NULL;
                return 0;
        }
        /* Interface and driver names: no spaces, no slashes, and short. */
        if (isempty(v) || strlen(v) > 64 || strchr(v, '/'))
                return -EBADMSG;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int parse_lease(char *line, HostdevLease *l) {
        char *save = NULL, *tok[9];
        const char *v;
        unsigned mac[6], vlan, index;
        int n = -1;

        for (size_t i = 0; i < ELEMENTSOF(tok); i++)
                tok[i] = strtok_r(i == 0 ? line : NULL, " ", &save);
        if (!tok[8] || strtok_r(NULL, " ", &save) || !streq(tok[0], "lease") ||
            host_pci_address_parse(tok[1], &l->address) < 0)
                return -EBADMSG;
        if (!(v = field(tok[2], "detach")) || (l->detach = hostdev_step_from_string(v)) < 0 ||
            !(v = field(tok[4], "vf")) || (l->vf = hostdev_step_from_string(v)) < 0)
                return -EBADMSG;
        if (!(v = field(tok[3], "driver")) || dup_or_null(v, &l->driver) < 0 || !(v = field(tok[5], "pf")) ||
            dup_or_null(v, &l->pf_ifname) < 0)
                return -EBADMSG;
        if (!(v = field(tok[6], "index")) || sscanf(v, "%u%n", &index, &n) != 1 || v[n] != 0 || index > 65535)
                return -EBADMSG;
        l->vf_index = index;
        if (!(v = field(tok[7], "mac")) ||
            sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%n", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5], &n) != 6 ||
            n != 17 || v[n] != 0)
                return -EBADMSG;
        for (size_t i = 0; i < 6; i++)
                l->old.mac[i] = (uint8_t) mac[i];
        if (!(v = field(tok[8], "vlan")) || sscanf(v, "%u%n", &vlan, &n) != 1 || v[n] != 0 || vlan > 4095)
                return -EBADMSG;
        l->old.vlan = (uint16_t) vlan;
        /* A VF step without the PF to restore it through cannot be given back. */
        if (l->vf != HOSTDEV_STEP_NONE && !l->pf_ifname)
                return -EBADMSG;
        return 0;
}

static bool uuid_shaped(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++)
                if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

int hostdev_leases_parse(const char *text, HostdevLeases **ret) {
        _cleanup_(hostdev_leases_freep) HostdevLeases *set = NULL;
        _cleanup_free_ char *copy = NULL;
        char *line, *next;
        size_t len = strlen(text);
        bool ended = false;

        /* Whole lines only, the last one "end". */
        if (len < 4 || !streq(text + len - 4, "end\n") || (len > 4 && text[len - 5] != '\n'))
                return -EBADMSG;
        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        for (line = copy; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (ended)
                        return -EBADMSG;
                if (!set) {
                        /* The first two lines: the format, then the domain. */
                        char uuid[37];

                        if (line == copy) {
                                if (!streq(line, HOSTDEV_STORE_MAGIC))
                                        return -EBADMSG;
                                continue;
                        }
                        if (strncmp(line, "domain ", 7) != 0 || strlen(line) < 7 + 36)
                                return -EBADMSG;
                        memcpy(uuid, line + 7, 36);
                        uuid[36] = 0;
                        if (!uuid_shaped(uuid) || (line[43] != 0 && line[43] != ' '))
                                return -EBADMSG;
                        set = hostdev_leases_new(uuid, line[43] ? line + 44 : "");
                        if (!set)
                                return -ENOMEM;
                } else if (streq(line, "end"))
                        ended = true;
                else {
                        int r;

                        if (!GREEDY_REALLOC(set->leases, set->allocated, set->n + 1))
                                return -ENOMEM;
                        set->leases[set->n] = (HostdevLease) {};
                        r = parse_lease(line, &set->leases[set->n]);
                        if (r < 0) {
                                hostdev_lease_done(&set->leases[set->n]);
                                return r;
                        }
                        set->n++;
                }
        }
        if (!set || !ended)
                return -EBADMSG;
        *ret = TAKE_PTR(set);
        return 0;
}

static char *store_dir(Manager *m) {
        char *p;
        return asprintf(&p, "%s/hostdevs", m->runtime_dir) < 0 ? NULL : p;
}

static char *store_path(Manager *m, const char *uuid) {
        char *p;
        return asprintf(&p, "%s/hostdevs/%s" HOSTDEV_STORE_SUFFIX, m->runtime_dir, uuid) < 0 ? NULL : p;
}

int hostdev_store_save(Manager *m, const HostdevLeases *set, VbError *reterr) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
        int r;

        if (set->n == 0) {
                hostdev_store_remove(m, set->uuid);
                return 0;
        }
        dir = store_dir(m);
        path = store_path(m, set->uuid);
        if (!dir || !path || hostdev_leases_format(set, &text) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r >= 0)
                r = write_file_replace(path, text, strlen(text), 0600);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "Failed to record the host devices of domain '%s' in '%s': %s",
                                    strempty(set->name), path, strerror(-r));
        return 0;
}

void hostdev_store_remove(Manager *m, const char *uuid) {
        _cleanup_free_ char *path = store_path(m, uuid);

        if (path && unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Failed to remove '%s', ignoring: %m", path);
}

/* One record found at start-up. Returns 1 if something was given back. */
static int load_one(Manager *m, const char *file) {
        _cleanup_(hostdev_leases_freep) HostdevLeases *set = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        Domain *d;
        int r;

        if (asprintf(&path, "%s/hostdevs/%s", m->runtime_dir, file) < 0)
                return -ENOMEM;
        r = read_full_file(path, HOSTDEV_STORE_MAX_SIZE, &text, NULL);
        if (r < 0)
                return log_warning_errno(r, "Failed to read the host device record '%s', ignoring it (what it lists "
                                         "is not given back): %m", path);
        r = hostdev_leases_parse(text, &set);
        if (r >= 0 && strncmp(file, set->uuid, 36) != 0)
                r = -EBADMSG;
        if (r < 0)
                return log_warning_errno(r, "The host device record '%s' is damaged, ignoring it (what it lists is not "
                                         "given back): %m", path);
        d = manager_domain_by_uuid(m, set->uuid);
        if (d && domain_is_active(d)) {
                r = hashmap_put(m->nodedev.leases_by_domain, set->uuid, set);
                if (r < 0)
                        return log_warning_errno(r, "Failed to keep the host devices of domain '%s', ignoring: %m",
                                                 set->name);
                log_info("Domain '%s' holds %zu host device(s) (from '%s').", set->name, set->n, path);
                TAKE_PTR(set);
                return 0;
        }
        log_notice("Domain '%s' (%s) stopped while virtbusd was not running: giving back its %zu host device(s).",
                   set->name, set->uuid, set->n);
        for (size_t i = set->n; i > 0; i--)
                (void) hostdev_lease_release(&set->leases[i - 1], set->name);
        hostdev_store_remove(m, set->uuid);
        return 1;
}

void manager_hostdev_load(Manager *m) {
        _cleanup_free_ char *dir = store_dir(m);
        _cleanup_(closedirp) DIR *d = dir ? opendir(dir) : NULL;
        struct dirent *de;
        bool changed = false;

        if (!d) {
                if (dir && errno != ENOENT)
                        log_warning_errno(-errno, "Failed to open '%s', ignoring: %m", dir);
                return;
        }
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);

                if (n != 36 + strlen(HOSTDEV_STORE_SUFFIX) || !streq(de->d_name + 36, HOSTDEV_STORE_SUFFIX))
                        continue;
                if (load_one(m, de->d_name) > 0)
                        changed = true;
        }
        if (changed)
                (void) manager_nodedev_scan(m);
}
