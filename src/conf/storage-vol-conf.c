/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <volume>: parsing (typed part taken from the validated tree, the rest kept in extra) and formatting. */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include "conf/conf-util.h"
#include "conf/storage-conf.h"

static const char * const storage_vol_type_table[_STORAGE_VOL_TYPE_MAX] = {
        [STORAGE_VOL_FILE] = "file",
        [STORAGE_VOL_BLOCK] = "block",
        [STORAGE_VOL_DIR] = "dir",
        [STORAGE_VOL_NETWORK] = "network",
        [STORAGE_VOL_NETDIR] = "netdir",
        [STORAGE_VOL_PLOOP] = "ploop",
};
DEFINE_STRING_TABLE_LOOKUP(storage_vol_type, StorageVolType);

static const char * const storage_vol_format_table[_STORAGE_VOL_FORMAT_MAX] = {
        [STORAGE_VOL_FORMAT_NONE] = "none",
        [STORAGE_VOL_FORMAT_RAW] = "raw",
        [STORAGE_VOL_FORMAT_DIR] = "dir",
        [STORAGE_VOL_FORMAT_BOCHS] = "bochs",
        [STORAGE_VOL_FORMAT_CLOOP] = "cloop",
        [STORAGE_VOL_FORMAT_DMG] = "dmg",
        [STORAGE_VOL_FORMAT_ISO] = "iso",
        [STORAGE_VOL_FORMAT_VPC] = "vpc",
        [STORAGE_VOL_FORMAT_VDI] = "vdi",
        [STORAGE_VOL_FORMAT_FAT] = "fat",
        [STORAGE_VOL_FORMAT_VHD] = "vhd",
        [STORAGE_VOL_FORMAT_PLOOP] = "ploop",
        [STORAGE_VOL_FORMAT_COW] = "cow",
        [STORAGE_VOL_FORMAT_QCOW] = "qcow",
        [STORAGE_VOL_FORMAT_QCOW2] = "qcow2",
        [STORAGE_VOL_FORMAT_QED] = "qed",
        [STORAGE_VOL_FORMAT_VMDK] = "vmdk",
        [STORAGE_VOL_FORMAT_LUKS] = "luks",
        [STORAGE_VOL_FORMAT_LINUX] = "linux",
        [STORAGE_VOL_FORMAT_FAT16] = "fat16",
        [STORAGE_VOL_FORMAT_FAT32] = "fat32",
        [STORAGE_VOL_FORMAT_LINUX_SWAP] = "linux-swap",
        [STORAGE_VOL_FORMAT_LINUX_LVM] = "linux-lvm",
        [STORAGE_VOL_FORMAT_LINUX_RAID] = "linux-raid",
        [STORAGE_VOL_FORMAT_EXTENDED] = "extended",
        [STORAGE_VOL_FORMAT_AUTO] = "auto",
        [STORAGE_VOL_FORMAT_UNKNOWN] = "unknown",
        [STORAGE_VOL_FORMAT_FS_EXT2] = "ext2",
        [STORAGE_VOL_FORMAT_FS_EXT3] = "ext3",
        [STORAGE_VOL_FORMAT_FS_EXT4] = "ext4",
        [STORAGE_VOL_FORMAT_FS_UFS] = "ufs",
        [STORAGE_VOL_FORMAT_FS_ISO9660] = "iso9660",
        [STORAGE_VOL_FORMAT_FS_UDF] = "udf",
        [STORAGE_VOL_FORMAT_FS_GFS] = "gfs",
        [STORAGE_VOL_FORMAT_FS_GFS2] = "gfs2",
        [STORAGE_VOL_FORMAT_FS_VFAT] = "vfat",
        [STORAGE_VOL_FORMAT_FS_HFSPLUS] = "hfs+",
        [STORAGE_VOL_FORMAT_FS_XFS] = "xfs",
        [STORAGE_VOL_FORMAT_FS_OCFS2] = "ocfs2",
        [STORAGE_VOL_FORMAT_FS_VMFS] = "vmfs",
};
DEFINE_STRING_TABLE_LOOKUP(storage_vol_format, StorageVolFormat);

StorageVolDef *storage_vol_def_free(StorageVolDef *def) {
        if (!def)
                return NULL;
        free(def->name);
        free(def->key);
        free(def->target_path);
        free(def->backing_path);
        conf_node_free(def->extra);
        free(def);
        return NULL;
}

int storage_vol_name_check(const char *name, VbError *reterr) {
        if (isempty(name))
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "A volume name must not be empty.");
        if (strlen(name) > NAME_MAX)
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT, "Volume name is longer than %d bytes.",
                                    NAME_MAX);
        if (name[0] == '.')
                return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                    "Volume name '%s' starts with '.' (expected a plain file name).", name);
        for (const char *p = name; *p; p++) {
                if (*p == '/')
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "Volume name '%s' contains '/' (expected a plain file name).", name);
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return vb_error_set(reterr, VB_ERROR_INVALID_ARGUMENT,
                                            "Volume name contains a control character (expected a plain file name).");
        }
        return 0;
}

/* <format type=> of parent, if any. */
static int take_format(ConfNode *parent, StorageVolFormat *ret, bool *given, VbError *e) {
        ConfNode *f = parent ? conf_node_use_child(parent, "format") : NULL;
        int r;

        if (!f)
                return 0;
        r = CONF_TAKE_ENUM(f, "type", storage_vol_format, true, ret, e);
        if (r < 0)
                return r;
        *given = true;
        return 0;
}

static int vol_parse_node(ConfNode *root, StorageVolDef **ret, VbError *e) {
        _cleanup_(storage_vol_def_freep) StorageVolDef *def = new0(StorageVolDef, 1);
        ConfNode *c, *t;
        int r;

        if (!def) {
                conf_node_free(root);
                return -ENOMEM;
        }
        def->extra = root;
        r = CONF_TAKE_ENUM(root, "type", storage_vol_type, false, &def->type, e);
        if (r < 0)
                return r;
        def->type_given = r > 0;
        c = conf_node_use_child(root, "name");
        if (c)
                def->name = conf_node_take_text(c);
        r = conf_check_name(c ?: root, "volume name", def->name, e);
        if (r < 0)
                return r;
        c = conf_node_use_child(root, "key");
        if (c && !(def->key = conf_node_take_text(c)) && !(def->key = strdup("")))
                return -ENOMEM;
        if ((r = storage_take_size(root, "capacity", &def->capacity, e)) < 0 ||
            (r = storage_take_size(root, "allocation", &def->allocation, e)) < 0 ||
            (r = storage_take_size(root, "physical", &def->physical, e)) < 0)
                return r;
        t = conf_node_use_child(root, "target");
        if (t) {
                if ((c = conf_node_use_child(t, "path")))
                        def->target_path = conf_node_take_text(c);
                r = take_format(t, &def->format, &def->format_given, e);
                if (r < 0)
                        return r;
        }
        t = conf_node_use_child(root, "backingStore");
        if (t) {
                if ((c = conf_node_use_child(t, "path")))
                        def->backing_path = conf_node_take_text(c);
                if (isempty(def->backing_path))
                        return conf_error(e, t, "<backingStore> needs a non-empty <path>");
                r = take_format(t, &def->backing_format, &def->backing_format_given, e);
                if (r < 0)
                        return r;
        }
        if (def->allocation.given && def->capacity.given && def->allocation.bytes > def->capacity.bytes &&
            def->format_given && def->format == STORAGE_VOL_FORMAT_RAW)
                return conf_error(e, root, "allocation %" PRIu64 " is larger than the capacity %" PRIu64 " of a raw volume",
                                  def->allocation.bytes, def->capacity.bytes);
        *ret = TAKE_PTR(def);
        return 0;
}

int storage_vol_def_parse_string(const char *xml, StorageVolDef **ret, VbError *reterr) {
        ConfNode *root;
        int r;

        r = conf_node_parse_string(xml, "storagevol.rng", &root, reterr);
        if (r < 0)
                return r;
        return vol_parse_node(root, ret, reterr);
}

static int add_format(ConfNode *parent, StorageVolFormat f) {
        ConfNode *n = conf_node_add(parent, "format");

        return !n || conf_node_set_attr(n, "type", storage_vol_format_to_string(f)) < 0 ? -ENOMEM : 0;
}

static int vol_to_node(const StorageVolDef *def, ConfNode **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = conf_node_new("volume"), *residue = NULL;
        int r;

        if (!n || (def->type_given && conf_node_set_attr(n, "type", storage_vol_type_to_string(def->type)) < 0) ||
            conf_node_add_text(n, "name", def->name) < 0 || conf_node_add_text(n, "key", def->key) < 0)
                return -ENOMEM;
        if ((r = storage_add_size(n, "capacity", &def->capacity)) < 0 ||
            (r = storage_add_size(n, "allocation", &def->allocation)) < 0 ||
            (r = storage_add_size(n, "physical", &def->physical)) < 0)
                return r;
        if (def->target_path || def->format_given) {
                ConfNode *t = conf_node_add(n, "target");

                if (!t || conf_node_add_text(t, "path", def->target_path) < 0 ||
                    (def->format_given && add_format(t, def->format) < 0))
                        return -ENOMEM;
        }
        if (def->backing_path) {
                ConfNode *b = conf_node_add(n, "backingStore");

                if (!b || conf_node_add_text(b, "path", def->backing_path) < 0 ||
                    (def->backing_format_given && add_format(b, def->backing_format) < 0))
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

int storage_vol_def_format(const StorageVolDef *def, char **ret) {
        _cleanup_(conf_node_freep) ConfNode *n = NULL;
        int r;

        r = vol_to_node(def, &n);
        if (r < 0)
                return r;
        return conf_node_format_string(n, ret);
}

int storage_vol_def_copy(const StorageVolDef *def, StorageVolDef **ret) {
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = storage_vol_def_format(def, &xml);
        if (r < 0)
                return r;
        r = storage_vol_def_parse_string(xml, ret, &e);
        vb_error_free(&e);
        return r;
}
