/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <domainsnapshot>: parsing (typed part taken from the validated tree, the rest kept in extra; nested
 * domain definitions through the domain parser) and formatting. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/snapshot-conf.h"

static const char * const snapshot_state_table[_SNAPSHOT_STATE_MAX] = {
        [SNAPSHOT_STATE_NOSTATE] = "nostate",
        [SNAPSHOT_STATE_RUNNING] = "running",
        [SNAPSHOT_STATE_BLOCKED] = "blocked",
        [SNAPSHOT_STATE_PAUSED] = "paused",
        [SNAPSHOT_STATE_SHUTDOWN] = "shutdown",
        [SNAPSHOT_STATE_SHUTOFF] = "shutoff",
        [SNAPSHOT_STATE_CRASHED] = "crashed",
        [SNAPSHOT_STATE_PMSUSPENDED] = "pmsuspended",
        [SNAPSHOT_STATE_DISK_SNAPSHOT] = "disk-snapshot",
};
DEFINE_STRING_TABLE_LOOKUP(snapshot_state, SnapshotState);

static const char * const snapshot_mode_table[_SNAPSHOT_MODE_MAX] = {
        [SNAPSHOT_MODE_NO] = "no",
        [SNAPSHOT_MODE_INTERNAL] = "internal",
        [SNAPSHOT_MODE_EXTERNAL] = "external",
        [SNAPSHOT_MODE_MANUAL] = "manual",
};
DEFINE_STRING_TABLE_LOOKUP(snapshot_mode, SnapshotMode);

static const char * const snapshot_kind_table[_SNAPSHOT_KIND_MAX] = {
        [SNAPSHOT_KIND_INTERNAL] = "internal",
        [SNAPSHOT_KIND_EXTERNAL] = "external",
        [SNAPSHOT_KIND_DISK_ONLY] = "disk-only",
};
DEFINE_STRING_TABLE_LOOKUP(snapshot_kind, SnapshotKind);

SnapshotDef *snapshot_def_free(SnapshotDef *def) {
        if (!def)
                return NULL;
        free(def->name);
        free(def->description);
        free(def->parent_name);
        free(def->memory_file);
        for (size_t i = 0; i < def->n_disks; i++) {
                free(def->disks[i].name);
                free(def->disks[i].source_file);
                free(def->disks[i].driver_type);
        }
        free(def->disks);
        domain_def_free(def->domain);
        domain_def_free(def->inactive_domain);
        conf_node_free(def->extra);
        free(def);
        return NULL;
}

SnapshotKind snapshot_def_kind(const SnapshotDef *def) {
        if (def->state_given && def->state == SNAPSHOT_STATE_DISK_SNAPSHOT)
                return SNAPSHOT_KIND_DISK_ONLY;
        if (def->memory_given && def->memory == SNAPSHOT_MODE_EXTERNAL)
                return SNAPSHOT_KIND_EXTERNAL;
        for (size_t i = 0; i < def->n_disks; i++)
                if (def->disks[i].mode_given && def->disks[i].mode == SNAPSHOT_MODE_EXTERNAL)
                        return SNAPSHOT_KIND_EXTERNAL;
        return SNAPSHOT_KIND_INTERNAL;
}

SnapshotMode snapshot_def_disk_mode(const SnapshotDef *def, const char *disk, SnapshotMode fallback) {
        for (size_t i = 0; i < def->n_disks; i++)
                if (streq(def->disks[i].name, disk))
                        return def->disks[i].mode_given ? def->disks[i].mode : fallback;
        return fallback;
}

static const DeviceDef *disk_by_target(const DomainDef *def, const char *target) {
        for (size_t i = 0; def && i < def->n_devices; i++)
                if (def->devices[i]->kind == DEVICE_DISK && streq_ptr(device_disk_get_target(def->devices[i]), target))
                        return def->devices[i];
        return NULL;
}

int snapshot_def_apply_overlays(const SnapshotDef *snap, const DomainDef *def, DomainDef **ret) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        int r;

        r = domain_def_copy(def, &copy);
        if (r < 0)
                return r;
        for (size_t i = 0; i < snap->n_disks; i++) {
                const SnapshotDiskDef *k = &snap->disks[i];
                const DeviceDef *was = disk_by_target(snap->domain, k->name);
                DeviceDef *dev = (DeviceDef *) disk_by_target(copy, k->name);

                if (k->mode != SNAPSHOT_MODE_EXTERNAL || !k->source_file || !dev)
                        continue;
                /* A definition whose disk has another image now (a saved definition changed since) keeps it. */
                if (was && !streq_ptr(device_disk_get_source(was), device_disk_get_source(dev)))
                        continue;
                r = device_disk_push_overlay(dev, k->source_file, k->driver_type ?: "qcow2");
                if (r < 0)
                        return r;
        }
        copy->serial = domain_def_new_serial();
        *ret = TAKE_PTR(copy);
        return 0;
}

int snapshot_def_drop_overlays(const SnapshotDef *snap, const DomainDef *def, DomainDef **ret,
                               const char **ret_blocking) {
        _cleanup_(domain_def_freep) DomainDef *copy = NULL;
        int r;

        r = domain_def_copy(def, &copy);
        if (r < 0)
                return r;
        for (size_t i = 0; i < snap->n_disks; i++) {
                const SnapshotDiskDef *k = &snap->disks[i];
                DeviceDef *dev = (DeviceDef *) disk_by_target(copy, k->name);
                bool top;

                if (k->mode != SNAPSHOT_MODE_EXTERNAL || !k->source_file)
                        continue;
                top = dev && streq_ptr(device_disk_get_source(dev), k->source_file);
                if (!top && ret_blocking) {
                        *ret_blocking = k->name;
                        return -EBUSY;
                }
                if (!top)
                        continue;
                r = device_disk_pop_overlay(dev);
                if (r == -ENOENT || r == -EINVAL) {
                        if (ret_blocking) {
                                *ret_blocking = k->name;
                                return -EBUSY;
                        }
                        continue;
                }
                if (r < 0)
                        return r;
        }
        copy->serial = domain_def_new_serial();
        *ret = TAKE_PTR(copy);
        return 0;
}

/* Parsing ----------------------------------------------------------------------------------------- */

static int parse_disks(SnapshotDef *def, ConfNode *disks, VbError *e) {
        ConfNode *d, *c;
        int r;

        while ((d = conf_node_use_child(disks, "disk"))) {
                SnapshotDiskDef *n, *grown = reallocarray(def->disks, def->n_disks + 1, sizeof *grown);

                if (!grown)
                        return -ENOMEM;
                def->disks = grown;
                n = &def->disks[def->n_disks];
                *n = (SnapshotDiskDef) {};
                n->name = conf_node_take_attr(d, "name");
                def->n_disks++;
                r = CONF_TAKE_ENUM(d, "snapshot", snapshot_mode, false, &n->mode, e);
                if (r < 0)
                        return r;
                n->mode_given = r > 0;
                if (isempty(n->name))
                        return conf_error(e, d, "a snapshot <disk> needs a name= (the domain disk's target)");
                for (size_t i = 0; i + 1 < def->n_disks; i++)
                        if (streq(def->disks[i].name, n->name))
                                return conf_error(e, d, "disk '%s' is named twice", n->name);
                if (n->mode_given && n->mode != SNAPSHOT_MODE_EXTERNAL && conf_node_child(d, "source"))
                        return conf_error(e, d, "disk '%s' has a <source> but snapshot='%s' (a source is for 'external')",
                                          n->name, snapshot_mode_to_string(n->mode));
                if ((c = conf_node_use_child(d, "driver")))
                        n->driver_type = conf_node_take_attr(c, "type");
                if ((c = conf_node_use_child(d, "source")))
                        n->source_file = conf_node_take_attr(c, "file");
        }
        return 0;
}

/* Takes the first child called name out of root when it is a whole domain definition (it has type=). */
static int parse_nested_domain(ConfNode *root, const char *name, DomainDef **ret, VbError *e) {
        ConfNode *c;
        int r;

        for (size_t i = 0; i < root->n_children; i++) {
                c = root->children[i];
                if (!conf_node_is(c, name) || !conf_node_attr(c, "type"))
                        continue;
                c = conf_node_detach_child(root, i);
                if (!streq(name, "domain") && (r = conf_node_rename(c, "domain")) < 0) {
                        conf_node_free(c);
                        return r;
                }
                /* Content-derived defaults: the same snapshot always formats the same way. */
                return domain_def_parse_node(c, DOMAIN_PARSE_STABLE_DEFAULTS, ret, e);
        }
        return 0;
}

static int parse_memory_node(SnapshotDef *def, ConfNode *m, VbError *e) {
        int r;

        r = CONF_TAKE_ENUM(m, "snapshot", snapshot_mode, false, &def->memory, e);
        if (r < 0)
                return r;
        def->memory_given = r > 0;
        def->memory_file = conf_node_take_attr(m, "file");
        if (def->memory_file && def->memory_given && def->memory != SNAPSHOT_MODE_EXTERNAL)
                return conf_error(e, m, "a memory file= needs snapshot='external' (got '%s')",
                                  snapshot_mode_to_string(def->memory));
        if (def->memory_file && !def->memory_given) {
                def->memory = SNAPSHOT_MODE_EXTERNAL;
                def->memory_given = true;
        }
        return 0;
}

static int parse_scalars(SnapshotDef *def, ConfNode *root, VbError *e) {
        _cleanup_free_ char *text = NULL;
        ConfNode *c;
        int r;

        if ((c = conf_node_use_child(root, "name"))) {
                def->name = conf_node_take_text(c);
                r = conf_check_name(c, "snapshot name", def->name, e);
                if (r < 0)
                        return r;
        }
        if ((c = conf_node_use_child(root, "description")))
                def->description = conf_node_take_text(c) ?: strdup("");
        if ((c = conf_node_use_child(root, "parent")) && (c = conf_node_use_child(c, "name")))
                def->parent_name = conf_node_take_text(c);
        if ((c = conf_node_use_child(root, "state"))) {
                text = conf_node_take_text(c);
                r = CONF_LOOKUP_ENUM(c, "snapshot state", text, snapshot_state, &def->state, e);
                if (r < 0)
                        return r;
                def->state_given = true;
                free(text);
                text = NULL;
        }
        if ((c = conf_node_use_child(root, "creationTime"))) {
                text = conf_node_take_text(c);
                r = conf_parse_uint(c, "creationTime", text, INT64_MAX, &def->creation_time, e);
                if (r < 0)
                        return r;
                def->creation_time_given = true;
                free(text);
                text = NULL;
        }
        if ((c = conf_node_use_child(root, "active"))) {
                text = conf_node_take_text(c);
                def->active = streq_ptr(text, "1");
        }
        return 0;
}

int snapshot_def_parse_string(const char *xml, SnapshotDef **ret, VbError *reterr) {
        _cleanup_(snapshot_def_freep) SnapshotDef *def = NULL;
        ConfNode *root, *c;
        int r;

        r = conf_node_parse_string(xml, "domainsnapshot.rng", &root, reterr);
        if (r < 0)
                return r;
        def = new0(SnapshotDef, 1);
        if (!def) {
                conf_node_free(root);
                return -ENOMEM;
        }
        def->extra = root;
        def->active = -1;
        if ((r = parse_scalars(def, root, reterr)) < 0)
                return r;
        if ((c = conf_node_use_child(root, "memory")) && (r = parse_memory_node(def, c, reterr)) < 0)
                return r;
        if ((c = conf_node_use_child(root, "disks")) && (r = parse_disks(def, c, reterr)) < 0)
                return r;
        if ((r = parse_nested_domain(root, "domain", &def->domain, reterr)) < 0 ||
            (r = parse_nested_domain(root, "inactiveDomain", &def->inactive_domain, reterr)) < 0)
                return r;
        conf_node_compact(def->extra);
        *ret = TAKE_PTR(def);
        return 0;
}

/* Formatting -------------------------------------------------------------------------------------- */

static int add_nested_domain(ConfNode *n, const DomainDef *d, const char *name, unsigned flags) {
        ConfNode *dn = NULL;
        int r;

        if (!d)
                return 0;
        r = domain_def_to_node(d, flags, &dn);
        if (r < 0)
                return r;
        if (!streq(name, "domain") && (r = conf_node_rename(dn, name)) < 0) {
                conf_node_free(dn);
                return r;
        }
        return conf_node_append(n, dn);
}

static int add_disks(ConfNode *n, const SnapshotDef *def) {
        ConfNode *disks, *d, *c;

        if (def->n_disks == 0)
                return 0;
        disks = conf_node_add(n, "disks");
        if (!disks)
                return -ENOMEM;
        for (size_t i = 0; i < def->n_disks; i++) {
                const SnapshotDiskDef *k = &def->disks[i];

                d = conf_node_add(disks, "disk");
                if (!d || conf_node_set_attr(d, "name", k->name) < 0 ||
                    (k->mode_given && conf_node_set_attr(d, "snapshot", snapshot_mode_to_string(k->mode)) < 0))
                        return -ENOMEM;
                if (k->driver_type && ((c = conf_node_add(d, "driver")) == NULL || conf_node_set_attr(c, "type", k->driver_type) < 0))
                        return -ENOMEM;
                if (k->source_file && ((c = conf_node_add(d, "source")) == NULL || conf_node_set_attr(c, "file", k->source_file) < 0))
                        return -ENOMEM;
        }
        return 0;
}

static int add_scalars(ConfNode *n, const SnapshotDef *def) {
        char buf[32];
        ConfNode *c;

        if (conf_node_add_text(n, "name", def->name) < 0 ||
            conf_node_add_text(n, "description", def->description) < 0)
                return -ENOMEM;
        if (def->state_given && conf_node_add_text(n, "state", snapshot_state_to_string(def->state)) < 0)
                return -ENOMEM;
        if (def->parent_name) {
                c = conf_node_add(n, "parent");
                if (!c || conf_node_add_text(c, "name", def->parent_name) < 0)
                        return -ENOMEM;
        }
        if (def->creation_time_given) {
                snprintf(buf, sizeof buf, "%" PRIu64, def->creation_time);
                if (conf_node_add_text(n, "creationTime", buf) < 0)
                        return -ENOMEM;
        }
        if (def->memory_given || def->memory_file) {
                c = conf_node_add(n, "memory");
                if (!c || (def->memory_given && conf_node_set_attr(c, "snapshot", snapshot_mode_to_string(def->memory)) < 0) ||
                    conf_node_set_attr(c, "file", def->memory_file) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int snapshot_def_format(const SnapshotDef *def, unsigned flags, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = conf_node_new("domainsnapshot"), *residue = NULL;
        int r;

        if (!n)
                return -ENOMEM;
        if ((r = add_scalars(n, def)) < 0 || (r = add_disks(n, def)) < 0 ||
            (r = add_nested_domain(n, def->domain, "domain", flags)) < 0 ||
            (r = add_nested_domain(n, def->inactive_domain, "inactiveDomain", flags)) < 0)
                return r;
        if (def->active >= 0 && conf_node_add_text(n, "active", def->active ? "1" : "0") < 0)
                return -ENOMEM;
        if (def->extra && !(residue = conf_node_copy(def->extra)))
                return -ENOMEM;
        r = conf_node_merge(n, residue);
        if (r < 0)
                return r;
        return conf_node_format_string(n, ret);
}

int snapshot_def_copy(const SnapshotDef *def, SnapshotDef **ret) {
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = snapshot_def_format(def, DOMAIN_FORMAT_SECURE, &xml);
        if (r < 0)
                return r;
        r = snapshot_def_parse_string(xml, ret, &e);
        vb_error_free(&e);
        return r;
}
