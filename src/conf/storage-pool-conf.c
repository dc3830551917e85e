/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <pool>: parsing (typed part taken from the validated tree, the rest kept in extra) and formatting. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "conf/conf-util.h"
#include "conf/storage-conf.h"

static const char * const storage_pool_type_table[_STORAGE_POOL_TYPE_MAX] = {
        [STORAGE_POOL_DIR] = "dir",
        [STORAGE_POOL_FS] = "fs",
        [STORAGE_POOL_NETFS] = "netfs",
        [STORAGE_POOL_LOGICAL] = "logical",
        [STORAGE_POOL_DISK] = "disk",
        [STORAGE_POOL_ISCSI] = "iscsi",
        [STORAGE_POOL_ISCSI_DIRECT] = "iscsi-direct",
        [STORAGE_POOL_SCSI] = "scsi",
        [STORAGE_POOL_MPATH] = "mpath",
        [STORAGE_POOL_RBD] = "rbd",
        [STORAGE_POOL_SHEEPDOG] = "sheepdog",
        [STORAGE_POOL_GLUSTER] = "gluster",
        [STORAGE_POOL_ZFS] = "zfs",
        [STORAGE_POOL_VSTORAGE] = "vstorage",
};
DEFINE_STRING_TABLE_LOOKUP(storage_pool_type, StoragePoolType);

/* Sizes ----------------------------------------------------------------------------------------- */

static int size_to_bytes(const char *value, const char *unit, uint64_t *ret) {
        unsigned __int128 bytes;
        unsigned long long v;
        unsigned base = 1024, power;
        const char *p;
        char *end;

        if (isempty(value) || !isdigit((unsigned char) value[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno != 0 || *end)
                return -EINVAL;
        if (isempty(unit) || !strcasecmp(unit, "b") || !strcasecmp(unit, "bytes"))
                power = 0;
        else {
                p = strchr("kmgtpe", tolower((unsigned char) unit[0]));
                if (!p)
                        return -EINVAL;
                power = (unsigned) (p - "kmgtpe") + 1;
                if (!strcasecmp(unit + 1, "b"))
                        base = 1000;
                else if (unit[1] && !!strcasecmp(unit + 1, "ib"))
                        return -EINVAL;
        }
        bytes = v;
        for (unsigned i = 0; i < power; i++) {
                bytes *= base;
                if (bytes > UINT64_MAX)
                        return -ERANGE;
        }
        *ret = (uint64_t) bytes;
        return 0;
}

int storage_take_size(ConfNode *parent, const char *name, StorageSize *ret, VbError *e) {
        ConfNode *n = conf_node_use_child(parent, name);
        _cleanup_free_ char *text = NULL, *unit = NULL;
        int r;

        if (!n)
                return 0;
        text = conf_node_take_text(n);
        unit = conf_node_take_attr(n, "unit");
        r = size_to_bytes(text, unit, &ret->bytes);
        if (r == -ERANGE)
                return conf_error(e, n, "size '%s %s' is too large (expected at most 16 EiB)", strempty(text),
                                  strempty(unit));
        if (r < 0)
                return conf_error(e, n, "invalid size '%s' with unit '%s' (expected a number and bytes, KiB, MiB, GiB, TiB, KB, MB...)",
                                  strempty(text), unit ?: "bytes");
        ret->given = true;
        ret->plain = !unit;
        return 1;
}

int storage_add_size(ConfNode *parent, const char *name, const StorageSize *s) {
        ConfNode *n;

        if (!s->given)
                return 0;
        n = conf_node_add(parent, name);
        if (!n || (!s->plain && conf_node_set_attr(n, "unit", "bytes") < 0))
                return -ENOMEM;
        {
                char buf[32];

                snprintf(buf, sizeof buf, "%" PRIu64, s->bytes);
                return conf_node_set_text(n, buf);
        }
}

/* Pools ----------------------------------------------------------------------------------------- */

StoragePoolDef *storage_pool_def_free(StoragePoolDef *def) {
        if (!def)
                return NULL;
        free(def->name);
        free(def->uuid_text);
        free(def->target_path);
        conf_node_free(def->extra);
        free(def);
        return NULL;
}

/* Types whose volumes live below a local directory: the definition must say which. */
static bool pool_type_needs_target(StoragePoolType t) {
        return t == STORAGE_POOL_DIR || t == STORAGE_POOL_FS || t == STORAGE_POOL_NETFS || t == STORAGE_POOL_VSTORAGE;
}

static int pool_validate(const StoragePoolDef *def, const ConfNode *root, VbError *e) {
        const ConfNode *src = conf_node_child(root, "source");

        if (pool_type_needs_target(def->type) && isempty(def->target_path))
                return conf_error(e, root, "a '%s' pool needs <target><path> (the directory that holds its volumes)",
                                  storage_pool_type_to_string(def->type));
        if (def->target_path && def->target_path[0] != '/' && pool_type_needs_target(def->type))
                return conf_error(e, root, "<target><path> '%s' is not an absolute path", def->target_path);
        if (def->type == STORAGE_POOL_FS && !(src && conf_node_child(src, "device")))
                return conf_error(e, root, "an 'fs' pool needs <source><device path=> (what to mount)");
        if (def->type == STORAGE_POOL_NETFS && !(src && conf_node_child(src, "host") && conf_node_child(src, "dir")))
                return conf_error(e, root, "a 'netfs' pool needs <source> with <host> and <dir>");
        return 0;
}

static int pool_fill_defaults(StoragePoolDef *def, unsigned flags) {
        _cleanup_free_ char *seed = NULL;
        int r;

        if (def->has_uuid)
                return 0;
        if (flags & STORAGE_PARSE_STABLE_DEFAULTS) {
                r = storage_pool_def_format(def, &seed);
                if (r < 0)
                        return r;
        }
        conf_fill_bytes(def->uuid, 16, seed, 0);
        def->uuid[6] = (def->uuid[6] & 0x0f) | 0x40;
        def->uuid[8] = (def->uuid[8] & 0x3f) | 0x80;
        def->has_uuid = true;
        return 0;
}

static int pool_parse_node(ConfNode *root, unsigned flags, StoragePoolDef **ret, VbError *e) {
        _cleanup_(storage_pool_def_freep) StoragePoolDef *def = new0(StoragePoolDef, 1);
        ConfNode *c, *t;
        int r;

        if (!def) {
                conf_node_free(root);
                return -ENOMEM;
        }
        def->extra = root;
        r = CONF_TAKE_ENUM(root, "type", storage_pool_type, true, &def->type, e);
        if (r < 0)
                return r;
        c = conf_node_use_child(root, "name");
        if (c)
                def->name = conf_node_take_text(c);
        r = conf_check_name(c ?: root, "pool name", def->name, e);
        if (r < 0)
                return r;
        r = conf_take_uuid(root, def->uuid, &def->uuid_text, e);
        if (r < 0)
                return r;
        def->has_uuid = r > 0;
        if ((r = storage_take_size(root, "capacity", &def->capacity, e)) < 0 ||
            (r = storage_take_size(root, "allocation", &def->allocation, e)) < 0 ||
            (r = storage_take_size(root, "available", &def->available, e)) < 0)
                return r;
        t = conf_node_use_child(root, "target");
        if (t && (c = conf_node_use_child(t, "path")))
                def->target_path = conf_node_take_text(c);
        r = pool_validate(def, root, e);
        if (r < 0)
                return r;
        r = pool_fill_defaults(def, flags);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(def);
        return 0;
}

int storage_pool_def_parse_string(const char *xml, unsigned flags, StoragePoolDef **ret, VbError *reterr) {
        ConfNode *root;
        int r;

        r = conf_node_parse_string(xml, "storagepool.rng", &root, reterr);
        if (r < 0)
                return r;
        return pool_parse_node(root, flags, ret, reterr);
}

static int pool_to_node(const StoragePoolDef *def, ConfNode **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = conf_node_new("pool"), *residue = NULL;
        char uuid[37];
        int r;

        if (!n || conf_node_set_attr(n, "type", storage_pool_type_to_string(def->type)) < 0 ||
            conf_node_add_text(n, "name", def->name) < 0)
                return -ENOMEM;
        if (def->has_uuid) {
                conf_uuid_format(def->uuid, uuid);
                if (conf_node_add_text(n, "uuid", def->uuid_text ?: uuid) < 0)
                        return -ENOMEM;
        }
        if ((r = storage_add_size(n, "capacity", &def->capacity)) < 0 ||
            (r = storage_add_size(n, "allocation", &def->allocation)) < 0 ||
            (r = storage_add_size(n, "available", &def->available)) < 0)
                return r;
        if (def->target_path) {
                ConfNode *t = conf_node_add(n, "target");

                if (!t || conf_node_add_text(t, "path", def->target_path) < 0)
                        return -ENOMEM;
        }
        if (def->extra && !(residue = conf_node_copy(def->extra)))
                return -ENOMEM;
        r = conf_node_merge(n, residue);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

int storage_pool_def_format(const StoragePoolDef *def, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = pool_to_node(def, &n);
        if (r < 0)
                return r;
        return conf_node_format_string(n, ret);
}

int storage_pool_def_copy(const StoragePoolDef *def, StoragePoolDef **ret) {
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = storage_pool_def_format(def, &xml);
        if (r < 0)
                return r;
        r = storage_pool_def_parse_string(xml, 0, ret, &e);
        vb_error_free(&e);
        return r;
}

void storage_pool_def_get_uuid_string(const StoragePoolDef *def, char ret[37]) {
        conf_uuid_format(def->uuid, ret);
}
