/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* virtbusctl: the command-line client of org.virtbus1. virtbusctl.c parses the options and dispatches
 * to the verbs (virtbusctl-domain.c, virtbusctl-objects.c, virtbusctl-console.c); virtbusctl-output.c
 * has the tables, the JSON emitter and the properties read from the bus. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "util/macro.h"

#define CTL_SERVICE "org.virtbus1"
#define CTL_MANAGER_PATH "/org/virtbus1"
#define CTL_MANAGER "org.virtbus1.Manager"
#define CTL_DOMAIN "org.virtbus1.Domain"
#define CTL_NETWORK "org.virtbus1.Network"
#define CTL_NODEDEV "org.virtbus1.NodeDevice"
#define CTL_POOL "org.virtbus1.StoragePool"
#define CTL_VOL "org.virtbus1.StorageVol"
#define CTL_SNAPSHOT "org.virtbus1.DomainSnapshot"
#define CTL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CTL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CTL_CALL_TIMEOUT_USEC (120ULL * 1000000ULL)

/* Exit codes (documented in virtbusctl(1)). */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,
        CTL_EXIT_USAGE = 2,
        CTL_EXIT_INVALID = 3,
        CTL_EXIT_NO_SUCH = 4,
        CTL_EXIT_DENIED = 5,
};

/* The options, shared by all verbs. */
typedef struct CtlArgs {
        bool json, legend, color, names;
        bool all, paused, disable, inactive, secure, live, config, maximum, once, force;
        bool children, children_only, metadata, disk_only;
        const char *state, *arch, *machine, *virttype, *cap, *driver, *description, *mac, *source;
        uint64_t offset, length;
        uint32_t vfs, vlan;
        bool vfs_set;
        double idle_timeout; /* console: seconds of quiet after the end of piped input */
        /* migrate */
        const char *listen_address;
        bool persistent, undefine_source, copy_storage, postcopy;
        uint64_t max_downtime, bandwidth, postcopy_after, postcopy_bandwidth;
} CtlArgs;

extern CtlArgs arg;

/* A kind of object on the bus: how to find one by name and list them. */
typedef struct CtlKind {
        const char *what;      /* "Domain", "Network", ... for messages */
        const char *interface;
        const char *get_by_name;
        const char *list;      /* Manager method taking flags ("t"), or NULL */
} CtlKind;

extern const CtlKind ctl_kind_domain, ctl_kind_network, ctl_kind_nodedev, ctl_kind_pool;

typedef struct Verb Verb;
typedef int (*VerbFunc)(sd_bus *bus, const Verb *v, int argc, char **argv);
struct Verb {
        const char *name;
        unsigned min_args, max_args; /* after the verb */
        VerbFunc func;
        const CtlKind *kind;         /* for the generic verbs */
        const char *method;          /* for the generic verbs */
};

/* Errors: prints the service's sentence and returns the exit code for it. */
int ctl_error(const sd_bus_error *e, int r, const char *what);
/* sd_bus_call_method on org.virtbus1 with a long timeout; on failure prints and returns -(exit code). */
int ctl_call(sd_bus *bus, const char *path, const char *interface, const char *member, sd_bus_message **reply,
             const char *types, ...);
/* The object path of the named object (to free); -(exit code) on failure. */
int ctl_lookup(sd_bus *bus, const CtlKind *k, const char *name, char **ret_path);
/* Objects listed by a method returning "ao" (to free with strv_free). */
int ctl_read_paths(sd_bus_message *reply, char ***ret);
void ctl_strv_free(char **l);
int ctl_read_file(const char *path, char **ret);
int ctl_get_string(sd_bus *bus, const char *path, const char *interface, const char *property, char **ret);
/* Prints an XML document (or {"xml": ...} with --json). */
int ctl_print_xml(const char *xml);
/* Prints what an action did: text (unless NULL) or {"name":..., "path":...} with --json. */
void ctl_print_done(const char *name, const char *path, const char *text);

/* Output ------------------------------------------------------------------------------------ */

typedef struct Json {
        FILE *f;
        unsigned depth;
        bool first[32];
        bool after_key;
} Json;

void json_begin(Json *j, FILE *f);
void json_end(Json *j); /* newline after the document */
void json_object_open(Json *j);
void json_object_close(Json *j);
void json_array_open(Json *j);
void json_array_close(Json *j);
void json_key(Json *j, const char *key);
void json_string(Json *j, const char *s);
void json_uint(Json *j, uint64_t v);
void json_int(Json *j, int64_t v);
void json_double(Json *j, double v);
void json_bool(Json *j, bool v);
void json_null(Json *j);

/* A table of strings, printed aligned. */
typedef struct Table {
        size_t n_columns, n_cells, allocated;
        char **cells; /* header first, row-major */
} Table;

Table *table_new(const char *first, ...); /* column headers, NULL-terminated */
int table_add_row(Table *t, ...);         /* n_columns strings (NULL = "-") */
void table_print(Table *t, FILE *f);      /* header only with --no-legend unset, bold with colour */
size_t table_rows(const Table *t);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* The properties of one interface of an object (GetAll), or a statistics a{sv}. */
typedef struct Prop {
        char *name;
        char type;  /* 's', 'o', 'b', 'u', 't', 'i', 'x', 'd', 'a' (as), '?' other */
        char *text; /* for tables */
        uint64_t u;
        int64_t i;
        double d;
        char **strv;
} Prop;

typedef struct Props {
        size_t n;
        Prop *p;
} Props;

/* Reads an a{sv} at the reply's current position. */
int props_read(sd_bus_message *m, Props *ret);
int props_get_all(sd_bus *bus, const char *path, const char *interface, Props *ret);
void props_done(Props *p);
const char *props_text(const Props *p, const char *name); /* "-" if absent */
bool props_bool(const Props *p, const char *name);
/* "key": value pairs of all properties into an open JSON object. */
void props_json(const Props *p, Json *j);
/* 1.5 GiB style. */
void format_bytes(uint64_t bytes, char *buf, size_t size);

/* GetAll of every object in paths (objects that went away meanwhile are left out); free with
 * ctl_props_free. */
int ctl_props_of(sd_bus *bus, char **paths, const char *interface, Props **ret, size_t *ret_n);
void ctl_props_free(Props *all, size_t n);
/* Prints the objects' names (--names) or their properties as a JSON array (--json) and returns 0, or
 * returns 1: the caller prints its table. */
int ctl_print_list_common(const Props *all, size_t n);
/* "\nN domains listed." unless --no-legend. */
void ctl_print_footer(size_t n, const char *what);
/* GetXMLDesc(flags) of the named domain (to free). */
int ctl_domain_xml(sd_bus *bus, const char *name, uint64_t flags, char **ret);

/* Verbs ------------------------------------------------------------------------------------- */

int verb_list(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_show(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_define(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_simple(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_start(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_autostart(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_rename(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_device(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_domcapabilities(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_capabilities(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_stats(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_setmem(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_screenshot(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_console(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_edit(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_net_list(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_net_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_net_leases(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_nodedev_list(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_nodedev_detach(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_pool_list(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_vol_list(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_vol_create(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_vol_delete(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_object_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_setvcpus(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_domifaddr(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_managedsave(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_migrate(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_snapshot_create(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_snapshot_list(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_snapshot_revert(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_snapshot_delete(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_snapshot_dumpxml(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_nodedev_sriov(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_nodedev_vf(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_vol_transfer(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_monitor(sd_bus *bus, const Verb *v, int argc, char **argv);
int verb_vnc(sd_bus *bus, const Verb *v, int argc, char **argv);

/* The default event loop, ended by SIGINT or SIGTERM (both blocked first: threads made later inherit
 * that). */
int ctl_event_new(sd_event **ret);
/* Parses a decimal number for argument what; prints and returns -(exit code) when it is not one. */
int ctl_parse_u64(const char *s, const char *what, uint64_t *ret);
/* Calls method (with the given arguments) on the named object of v->kind; prints what ctl_print_done
 * prints. */
int ctl_call_on(sd_bus *bus, const Verb *v, const char *name, const char *method, const char *types, ...);
