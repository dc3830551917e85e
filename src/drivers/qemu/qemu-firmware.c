/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Firmware descriptors, firmware auto-selection (<os firmware='efi'>) and the per-domain UEFI variable
 * store (<nvram>). */
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/domain-access.h"
#include "drivers/qemu/qemu-caps.h"
#include "drivers/qemu/qemu-command.h"
#include "drivers/qemu/qemu-firmware.h"
#include "drivers/qemu/qemu-monitor.h"
#include "host/user-open.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"

const char * const qemu_firmware_dirs[] = { "/etc/qemu/firmware", "/usr/share/qemu/firmware", NULL };

/* Variable store templates are 128 KiB to 4 MiB; anything much larger is not one. */
#define NVRAM_TEMPLATE_MAX (64 * 1024 * 1024)

static void firmware_done(QemuFirmware *f) {
        free(f->descriptor);
        free(f->executable);
        free(f->nvram_template);
        json_object_put(f->targets);
        *f = (QemuFirmware) {};
}

void qemu_firmware_list_done(QemuFirmwareList *l) {
        for (size_t i = 0; i < l->n; i++)
                firmware_done(&l->items[i]);
        free(l->items);
        *l = (QemuFirmwareList) {};
}

static bool json_array_has(struct json_object *a, const char *s) {
        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++)
                if (streq_ptr(json_object_get_string(json_object_array_get_idx(a, i)), s))
                        return true;
        return false;
}

/* One descriptor; 0 and nothing in *ret when it is unreadable, malformed or of a kind we do not know. */
static int firmware_read(const char *path, QemuFirmware *ret) {
        _cleanup_(json_object_putp) struct json_object *d = NULL;
        _cleanup_free_ char *text = NULL;
        struct json_object *mapping, *features;
        const char *device, *file = NULL, *template = NULL;
        QemuFirmware f = {};

        if (read_full_file(path, 1024 * 1024, &text, NULL) < 0)
                return 0;
        d = json_tokener_parse(text);
        mapping = qemu_json_get(d, "mapping");
        device = qemu_json_string(mapping, "device");
        if (streq_ptr(device, "flash")) {
                file = qemu_json_string(qemu_json_get(mapping, "executable"), "filename");
                template = qemu_json_string(qemu_json_get(mapping, "nvram-template"), "filename");
        } else if (streq_ptr(device, "memory"))
                file = qemu_json_string(mapping, "filename");
        if (!file)
                return 0;
        features = qemu_json_get(d, "features");
        f = (QemuFirmware) {
                .uefi = json_array_has(qemu_json_get(d, "interface-types"), "uefi"),
                .bios = json_array_has(qemu_json_get(d, "interface-types"), "bios"),
                .flash = streq(device, "flash"),
                .secure_boot = json_array_has(features, "secure-boot"),
                .requires_smm = json_array_has(features, "requires-smm"),
                .enrolled_keys = json_array_has(features, "enrolled-keys"),
                .targets = json_object_get(qemu_json_get(d, "targets")),
                .descriptor = strdup(path),
                .executable = strdup(file),
                .nvram_template = template ? strdup(template) : NULL,
        };
        if (!f.descriptor || !f.executable || (template && !f.nvram_template)) {
                firmware_done(&f);
                return -ENOMEM;
        }
        *ret = f;
        return 1;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(strrchr(*(char * const *) a, '/'), strrchr(*(char * const *) b, '/'));
}

/* The .json files by name across dirs, an earlier directory's hiding a later one's. */
static int descriptor_paths(const char * const *dirs, char ***ret, size_t *ret_n) {
        char **names = NULL;
        size_t n = 0;

        for (size_t i = 0; dirs[i]; i++) {
                _cleanup_(closedirp) DIR *d = opendir(dirs[i]);
                struct dirent *de;

                while (d && (de = readdir(d))) {
                        size_t l = strlen(de->d_name);
                        bool seen = false;
                        char **nn;

                        if (l < 6 || !streq(de->d_name + l - 5, ".json"))
                                continue;
                        for (size_t j = 0; j < n; j++)
                                seen = seen || streq(strrchr(names[j], '/') + 1, de->d_name);
                        if (seen)
                                continue;
                        nn = realloc(names, (n + 1) * sizeof(char *));
                        if (!nn)
                                goto oom;
                        names = nn;
                        if (asprintf(&names[n], "%s/%s", dirs[i], de->d_name) < 0)
                                goto oom;
                        n++;
                }
        }
        /* Ranked by file name (the number prefix), across directories. */
        if (n > 1)
                qsort(names, n, sizeof(char *), name_cmp);
        *ret = names;
        *ret_n = n;
        return 0;
oom:
        for (size_t j = 0; j < n; j++)
                free(names[j]);
        free(names);
        return -ENOMEM;
}

int qemu_firmware_list_load(const char * const *dirs, QemuFirmwareList *ret) {
        QemuFirmwareList l = {};
        char **names = NULL;
        size_t n = 0;
        int r;

        r = descriptor_paths(dirs, &names, &n);
        if (r < 0)
                return r;
        l.items = new0(QemuFirmware, n ?: 1);
        if (!l.items)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = firmware_read(names[i], &l.items[l.n]);
                if (r > 0)
                        l.n++;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (r < 0) {
                qemu_firmware_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

bool qemu_firmware_targets(const QemuFirmware *f, const char *qemu_arch, const char *machine) {
        struct json_object *targets = f->targets;
        /* QEMU's aliases are its newest version of the family: the glob's version part matches empty. */
        const char *m = streq(machine, "pc") ? "pc-i440fx-" : streq(machine, "q35") ? "pc-q35-" : machine;

        for (size_t i = 0; json_object_is_type(targets, json_type_array) && i < json_object_array_length(targets); i++) {
                struct json_object *t = json_object_array_get_idx(targets, i), *machines;

                if (!streq_ptr(qemu_json_string(t, "architecture"), qemu_arch))
                        continue;
                machines = qemu_json_get(t, "machines");
                for (size_t j = 0; json_object_is_type(machines, json_type_array) && j < json_object_array_length(machines); j++) {
                        const char *glob = json_object_get_string(json_object_array_get_idx(machines, j));
                        if (glob && fnmatch(glob, m, 0) == 0)
                                return true;
                }
        }
        return false;
}

bool qemu_firmware_usable(const QemuFirmware *f) {
        return access(f->executable, R_OK) == 0 && (!f->nvram_template || access(f->nvram_template, R_OK) == 0);
}

char *qemu_firmware_default_nvram(const char *nvram_dir, const char *uuid) {
        char *p;
        return asprintf(&p, "%s/%s_VARS.fd", nvram_dir, uuid) < 0 ? NULL : p;
}

/* Selection ------------------------------------------------------------------------------------------------ */

/* What <os><firmware> asks: -1 not said, 0 enabled='no', 1 enabled='yes'. */
typedef struct FirmwareWish {
        int secure_boot, enrolled_keys;
} FirmwareWish;

static FirmwareWish firmware_wish(const ConfNode *os) {
        const ConfNode *fw = conf_node_child(os, "firmware");
        FirmwareWish w = { -1, -1 };

        for (size_t i = 0; fw && i < fw->n_children; i++) {
                const ConfNode *c = fw->children[i];
                const char *name = conf_node_attr(c, "name");
                int v = streq_ptr(conf_node_attr(c, "enabled"), "yes");

                if (!conf_node_is(c, "feature"))
                        continue;
                if (streq_ptr(name, "secure-boot"))
                        w.secure_boot = v;
                else if (streq_ptr(name, "enrolled-keys"))
                        w.enrolled_keys = v;
        }
        return w;
}

static bool wish_met(int wish, bool has) {
        return wish < 0 || (wish > 0) == has;
}

/* The descriptor for firmware 'efi' (uefi) or 'bios'; NULL if none. Without a wish about secure boot, one
 * without it is preferred. */
static const QemuFirmware *firmware_select(const QemuFirmwareList *l, bool uefi, const char *qemu_arch,
                                           const char *machine, FirmwareWish w) {
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < l->n; i++) {
                        const QemuFirmware *f = &l->items[i];

                        if ((uefi ? !f->uefi : !f->bios) || (uefi && !f->flash) ||
                            !qemu_firmware_targets(f, qemu_arch, machine) || !wish_met(w.secure_boot, f->secure_boot) ||
                            !wish_met(w.enrolled_keys, f->enrolled_keys) || !qemu_firmware_usable(f))
                                continue;
                        if (pass == 0 && w.secure_boot < 0 && f->secure_boot)
                                continue;
                        return f;
                }
        return NULL;
}

static const QemuFirmware *firmware_by_executable(const QemuFirmwareList *l, const char *path) {
        for (size_t i = 0; path && i < l->n; i++)
                if (streq(l->items[i].executable, path))
                        return &l->items[i];
        return NULL;
}

static char *describe_wish(const char *firmware, const char *arch, const char *machine, FirmwareWish w) {
        StrBuf b = STRBUF_NULL;

        strbuf_appendf(&b, "firmware '%s' for arch '%s' and machine '%s'", firmware, arch, machine);
        if (w.secure_boot >= 0)
                strbuf_appendf(&b, " with secure-boot %s", w.secure_boot ? "enabled" : "disabled");
        if (w.enrolled_keys >= 0)
                strbuf_appendf(&b, "%s enrolled-keys %s", w.secure_boot >= 0 ? " and" : " with",
                               w.enrolled_keys ? "enabled" : "disabled");
        return strbuf_steal(&b);
}

static char *describe_dirs(const char * const *dirs) {
        StrBuf b = STRBUF_NULL;

        for (size_t i = 0; dirs[i]; i++)
                strbuf_appendf(&b, "%s'%s'", i == 0 ? "" : dirs[i + 1] ? ", " : " or ", dirs[i]);
        return strbuf_steal(&b);
}

/* <firmware><feature enabled= name=/></firmware> as chosen, for the features a client may ask about. */
static int set_feature(ConfNode *os, const char *name, bool enabled) {
        ConfNode *fw = conf_node_child(os, "firmware") ?: conf_node_add(os, "firmware");

        if (!fw)
                return -ENOMEM;
        for (size_t i = 0; i < fw->n_children; i++)
                if (conf_node_is(fw->children[i], "feature") && streq_ptr(conf_node_attr(fw->children[i], "name"), name))
                        return 0;
        ConfNode *c = conf_node_add(fw, "feature");
        if (!c || conf_node_set_attr(c, "enabled", enabled ? "yes" : "no") < 0 || conf_node_set_attr(c, "name", name) < 0)
                return -ENOMEM;
        return 0;
}

/* firmware='efi'|'bios' into <loader> (and <nvram template=>) in os. 1 if os changed. */
static int resolve_firmware(const DomainDef *def, ConfNode *os, const QemuFirmwareList *l, const char * const *dirs,
                            VbError *reterr) {
        const char *firmware = conf_node_attr(os, "firmware");
        const char *arch = def->os.arch ?: "x86_64";
        const char *qemu_arch = qemu_caps_arch_to_qemu(arch) ?: arch;
        const char *machine = def->os.machine ?: "pc";
        ConfNode *loader = conf_node_child(os, "loader"), *nvram;
        FirmwareWish w = firmware_wish(os);
        const QemuFirmware *f;

        if (!firmware)
                return 0;
        if (loader && !isempty(loader->text)) {
                /* A loader named: the descriptor of that image says how it is mapped. */
                f = firmware_by_executable(l, loader->text);
                if (!f || !f->flash || conf_node_attr(loader, "type"))
                        return 0;
                if ((!conf_node_attr(loader, "readonly") && conf_node_set_attr(loader, "readonly", "yes") < 0) ||
                    (!conf_node_attr(loader, "secure") &&
                     conf_node_set_attr(loader, "secure", f->requires_smm ? "yes" : "no") < 0) ||
                    conf_node_set_attr(loader, "type", "pflash") < 0)
                        return -ENOMEM;
                return 1;
        }
        f = firmware_select(l, streq(firmware, "efi"), qemu_arch, machine, w);
        if (!f && streq(firmware, "bios") && w.secure_boot <= 0)
                return 0; /* no descriptor for a BIOS: QEMU's own SeaBIOS is one */
        if (!f) {
                _cleanup_free_ char *what = describe_wish(firmware, arch, machine, w), *where = describe_dirs(dirs);
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Domain '%s': no firmware descriptor in %s offers %s (install the package "
                                    "of that firmware, e.g. 'ovmf', or name a <loader>)",
                                    domain_def_get_name(def), strempty(where), strempty(what));
        }
        log_debug("Domain '%s': firmware '%s' is '%s' (descriptor '%s').", domain_def_get_name(def), firmware,
                  f->executable, f->descriptor);
        if (!loader && !(loader = conf_node_add(os, "loader")))
                return -ENOMEM;
        if (conf_node_set_text(loader, f->executable) < 0)
                return -ENOMEM;
        if (f->flash) {
                /* libvirt's attribute order. */
                if (conf_node_set_attr(loader, "readonly", "yes") < 0 ||
                    conf_node_set_attr(loader, "secure", f->requires_smm ? "yes" : "no") < 0 ||
                    conf_node_set_attr(loader, "type", "pflash") < 0)
                        return -ENOMEM;
                nvram = conf_node_child(os, "nvram");
                if (f->nvram_template && !(nvram && conf_node_attr(nvram, "template"))) {
                        if (!nvram && !(nvram = conf_node_add(os, "nvram")))
                                return -ENOMEM;
                        if (conf_node_set_attr(nvram, "template", f->nvram_template) < 0)
                                return -ENOMEM;
                }
        } else if (conf_node_set_attr(loader, "type", "rom") < 0)
                return -ENOMEM;
        if (f->uefi && (set_feature(os, "enrolled-keys", f->enrolled_keys) < 0 ||
                        set_feature(os, "secure-boot", f->secure_boot) < 0))
                return -ENOMEM;
        return 1;
}

/* The variable store --------------------------------------------------------------------------------------- */

/* The store's path as <nvram> gives it: its text, or <source file=> (type='file'); NULL if none. */
static const char *nvram_path(const ConfNode *nvram) {
        if (!nvram)
                return NULL;
        if (!isempty(nvram->text))
                return nvram->text;
        return qemu_node_attr(nvram, "source", "file");
}

/* Reads the template with the rights of whoever vouched for it (a descriptor's template is root's). */
static int read_template(const DomainAccess *access, const char *template, bool descriptor, char **ret, size_t *ret_size) {
        HostOpenRequest q = { .path = template, .mode = HOST_OPEN_READ };
        uint32_t uid = descriptor || !access ? 0 : domain_access_uid_for(access, template);
        int r;

        r = host_open_as(uid, &q, 1);
        if (r < 0)
                return r;
        if (q.error < 0)
                return q.error;
        r = read_full_fd(q.fd, NVRAM_TEMPLATE_MAX, ret, ret_size);
        close(q.fd);
        return r;
}

/* A store the definition names is the owner's: created with the owner's rights (O_EXCL-like: only when
 * missing), then filled. */
static int write_user_store(const DomainAccess *access, const char *path, const char *data, size_t size) {
        HostOpenRequest q = { .path = path, .mode = HOST_OPEN_TRUNCATE };
        int r;

        r = host_open_as(domain_access_uid_for(access, path), &q, 1);
        if (r < 0)
                return r;
        if (q.error < 0)
                return q.error;
        r = write_all_fd(q.fd, data, size);
        if (r >= 0 && fsync(q.fd) < 0)
                r = -errno;
        close(q.fd);
        return r;
}

static int nvram_create(const DomainDef *def, const DomainAccess *access, const char *path, const char *template,
                        bool descriptor_template, bool own_store, VbError *reterr) {
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int r;

        r = read_template(access, template, descriptor_template, &data, &size);
        if (r >= 0)
                r = own_store || !access || access->owner == 0 ? write_file_atomic(path, data, size, 0600)
                                                                : write_user_store(access, path, data, size);
        if (r < 0)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED,
                                    "Domain '%s': failed to create the NVRAM store '%s' from template '%s': %s",
                                    domain_def_get_name(def), path, template, strerror(-r));
        log_info("Domain '%s': NVRAM store '%s' created from '%s'.", domain_def_get_name(def), path, template);
        return 0;
}

/* For a read-only pflash loader: the store named or given a name (1 if os changed), created if missing. */
static int prepare_nvram(const DomainDef *def, const DomainAccess *access, ConfNode *os, const QemuFirmwareList *l,
                         const char *nvram_dir, VbError *reterr) {
        ConfNode *loader = conf_node_child(os, "loader"), *nvram = conf_node_child(os, "nvram");
        const char *type = nvram ? conf_node_attr(nvram, "type") : NULL, *template, *path;
        _cleanup_free_ char *default_path = NULL;
        const QemuFirmware *f;
        bool changed = false, from_descriptor;
        struct stat st;
        int r;

        if (!loader || isempty(loader->text) || !streq_ptr(conf_node_attr(loader, "type"), "pflash") ||
            streq_ptr(conf_node_attr(loader, "readonly"), "no"))
                return 0;
        if (type && !streq(type, "file"))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Domain '%s': the qemu driver keeps NVRAM in files, not in <nvram type='%s'>",
                                    domain_def_get_name(def), type);
        if (nvram && (!streq_ptr(conf_node_attr(nvram, "format") ?: "raw", "raw") ||
                      !streq_ptr(conf_node_attr(nvram, "templateFormat") ?: "raw", "raw")))
                return vb_error_set(reterr, VB_ERROR_NOT_SUPPORTED,
                                    "Domain '%s': the qemu driver keeps NVRAM in format 'raw' only (<nvram format=> "
                                    "and templateFormat=)", domain_def_get_name(def));
        path = nvram_path(nvram);
        if (!path) {
                default_path = qemu_firmware_default_nvram(nvram_dir, domain_def_uuid(def).s);
                if (!default_path || (!nvram && !(nvram = conf_node_add(os, "nvram"))) ||
                    conf_node_set_text(nvram, default_path) < 0)
                        return -ENOMEM;
                path = default_path;
                changed = true;
                r = mkdir_p(nvram_dir, 0700);
                if (r < 0)
                        return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Failed to create '%s': %s", nvram_dir,
                                            strerror(-r));
        }
        if (path[0] != '/')
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Domain '%s': the NVRAM store '%s' is not an absolute path",
                                    domain_def_get_name(def), path);
        if (stat(path, &st) == 0)
                return changed; /* whether the owner may use it: checked when it is opened for QEMU */
        if (errno != ENOENT)
                return vb_error_set(reterr, VB_ERROR_OPERATION_FAILED, "Domain '%s': cannot use the NVRAM store '%s': %m",
                                    domain_def_get_name(def), path);
        template = conf_node_attr(nvram, "template");
        from_descriptor = !template;
        f = firmware_by_executable(l, loader->text);
        if (!template && f && f->nvram_template) {
                template = f->nvram_template;
                if (conf_node_set_attr(nvram, "template", template) < 0)
                        return -ENOMEM;
                changed = true;
        }
        if (!template)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Domain '%s': the NVRAM store '%s' does not exist and there is nothing to create "
                                    "it from: no <nvram template='...'>, and no firmware descriptor pairs loader '%s' "
                                    "with a template", domain_def_get_name(def), path, loader->text);
        r = nvram_create(def, access, path, template, from_descriptor, default_path != NULL, reterr);
        if (r < 0)
                return r;
        return changed;
}

int qemu_firmware_prepare(const DomainDef *def, const DomainAccess *access, const char * const *dirs,
                          const char *nvram_dir, DomainDef **ret, VbError *reterr) {
        _cleanup_(qemu_firmware_list_done) QemuFirmwareList l = {};
        _cleanup_(conf_node_freep) ConfNode *root = NULL;
        ConfNode *os;
        int r, changed;

        *ret = NULL;
        r = domain_def_to_node(def, DOMAIN_FORMAT_SECURE, &root);
        if (r < 0)
                return r;
        os = conf_node_child(root, "os");
        if (!os || (!conf_node_attr(os, "firmware") && !conf_node_child(os, "loader")))
                return 0;
        r = qemu_firmware_list_load(dirs, &l);
        if (r < 0)
                return r;
        changed = resolve_firmware(def, os, &l, dirs, reterr);
        if (changed < 0)
                return changed;
        r = prepare_nvram(def, access, os, &l, nvram_dir, reterr);
        if (r < 0)
                return r;
        if (!changed && !r)
                return 0;
        conf_node_sort(root);
        return domain_def_parse_node(TAKE_PTR(root), 0, ret, reterr);
}

void qemu_firmware_forget(const DomainDef *def, const char *nvram_dir) {
        _cleanup_(conf_node_freep) ConfNode *root = NULL;
        _cleanup_free_ char *ours = qemu_firmware_default_nvram(nvram_dir, domain_def_uuid(def).s);
        const char *named;

        if (!ours || domain_def_to_node(def, 0, &root) < 0)
                return;
        named = nvram_path(conf_node_child(conf_node_child(root, "os"), "nvram"));
        /* A store the definition names elsewhere is the user's. */
        if (named && !streq(named, ours))
                return;
        if (unlink(ours) < 0) {
                if (errno != ENOENT)
                        log_warning_errno(-errno, "Domain '%s': failed to remove the NVRAM store '%s', ignoring: %m",
                                          domain_def_get_name(def), ours);
                return;
        }
        log_info("Domain '%s': NVRAM store '%s' removed with its definition.", domain_def_get_name(def), ours);
}
