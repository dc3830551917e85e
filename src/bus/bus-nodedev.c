/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.virtbus1.NodeDevice on /org/virtbus1/nodedev/<name, path-encoded>, and the Manager's node device
 * methods. Everything that changes the host asks polkit for nodedev.manage or sriov.configure first. */
#include <stdio.h>

#include "bus/bus-authz.h"
#include "bus/bus-error.h"
#include "bus/bus-nodedev.h"
#include "bus/bus-object.h"
#include "core/manager.h"
#include "util/log.h"

#define ACTION_NODEDEV_MANAGE BUS_ACTION_NODEDEV_MANAGE
#define ACTION_SRIOV_CONFIGURE BUS_ACTION_SRIOV_CONFIGURE
#define NAME_MAX_LEN 1024
#define DETACH_WHOLE_GROUP UINT64_C(1)

char *bus_nodedev_path(const NodeDevice *d) {
        char *path = NULL;

        return sd_bus_path_encode(VB_NODEDEV_PREFIX, d->name, &path) < 0 ? NULL : path;
}

NodeDevice *bus_nodedev_from_path(BusServer *s, const char *path) {
        _cleanup_free_ char *name = NULL;

        if (sd_bus_path_decode(path, VB_NODEDEV_PREFIX, &name) <= 0 || isempty(name))
                return NULL;
        return manager_nodedev_by_name(s->manager, name);
}

static int find_nodedev(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error) {
        return bus_object_found(bus_nodedev_from_path(userdata, path), found);
}

static char *path_of(const void *d) {
        return bus_nodedev_path(d);
}

static int enumerate_nodedevs(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        BusServer *s = userdata;
        NodeDevice *const *l;
        size_t n = manager_nodedev_list(s->manager, &l);

        return bus_object_enumerate((const void * const *) l, n, path_of, nodes);
}

static BusServer *server_of(NodeDevice *d) {
        return d->manager->events.userdata;
}

/* The caller's uid, for the log of privileged changes. */
static uid_t caller_uid(sd_bus_message *m) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *c = NULL;
        uid_t uid = (uid_t) -1;

        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &c) >= 0)
                (void) sd_bus_creds_get_euid(c, &uid);
        return uid;
}

/* Asks polkit; details name the device and its PCI address. Returns 1 to go on, 0 pending, < 0 error. */
static int authorize(BusServer *s, sd_bus_message *m, NodeDevice *d, const char *action, sd_bus_error *error) {
        char addr[HOST_PCI_ADDRESS_MAX] = "";
        const char *details[] = { "device", d->name, "address", addr, NULL };

        if (d->is_pci)
                host_pci_address_format(&d->pci, addr);
        return bus_polkit_check(s->polkit, m, action, details, error);
}

static int method_get_xml_desc(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        NodeDevice *d = userdata;
        _cleanup_free_ char *xml = NULL;
        VbError e = VB_ERROR_NULL;
        int r;

        r = bus_read_flags(m, 0, NULL, error);
        if (r < 0)
                return r;
        r = manager_nodedev_get_xml(d->manager, d, &xml, &e);
        if (r < 0)
                return bus_reply_vb_error(error, &e, r);
        return sd_bus_reply_method_return(m, "s", xml);
}

static int method_detach(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        NodeDevice *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        const char *driver;
        BusLater *l;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "st", &driver, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, DETACH_WHOLE_GROUP, error);
        if (r < 0)
                return r;
        if (!isempty(driver) && !streq(driver, "vfio") && !streq(driver, "vfio-pci"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown driver '%s' (expected '', 'vfio' or 'vfio-pci')", driver);
        r = authorize(s, m, d, ACTION_NODEDEV_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Answered once a thread has made the change and the host was read again; busy meanwhile. */
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_nodedev_detach(s->manager, d, driver, flags & DETACH_WHOLE_GROUP, caller_uid(m), bus_later_done,
                                   l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

typedef int (*NodeDevOp)(Manager *m, NodeDevice *d, uid_t uid, NodeDevDone done, void *userdata, VbError *reterr);

static int run_simple(sd_bus_message *m, NodeDevice *d, NodeDevOp op, sd_bus_error *error) {
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        BusLater *l;
        int r;

        r = bus_read_flags(m, 0, NULL, error);
        if (r < 0)
                return r;
        r = authorize(s, m, d, ACTION_NODEDEV_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = op(s->manager, d, caller_uid(m), bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

static int method_reattach(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_simple(m, userdata, manager_nodedev_reattach, error);
}

static int method_reset(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return run_simple(m, userdata, manager_nodedev_reset, error);
}

static int method_set_virtual_functions(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        NodeDevice *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        BusLater *l;
        uint64_t flags;
        uint32_t count;
        int r;

        r = sd_bus_message_read(m, "ut", &count, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (count > UINT16_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Too many virtual functions: %u", count);
        r = authorize(s, m, d, ACTION_SRIOV_CONFIGURE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Answered when a thread has written sriov_numvfs (the kernel may take seconds) and the VFs'
         * node devices were announced; the device is busy meanwhile. */
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_nodedev_set_vfs(s->manager, d, count, caller_uid(m), bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

static int method_configure_virtual_function(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        NodeDevice *d = userdata;
        BusServer *s = server_of(d);
        VbError e = VB_ERROR_NULL;
        const char *mac;
        BusLater *l;
        uint32_t vf, vlan;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "usut", &vf, &mac, &vlan, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (strlen(mac) != 17)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid MAC address '%s' (expected six hex pairs like 52:54:00:12:34:56)", mac);
        if (vlan > 4094)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid VLAN %u (expected 0 to 4094)", vlan);
        r = authorize(s, m, d, ACTION_SRIOV_CONFIGURE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Answered once a thread has configured the VF and the host was read again; busy meanwhile. */
        l = bus_later_new(s, m);
        if (!l)
                return -ENOMEM;
        r = manager_nodedev_configure_vf(s->manager, d, vf, mac, vlan, caller_uid(m), bus_later_done, l, &e);
        return bus_later_end(l, r == 0, r, &e, error);
}

BUS_PROPERTY_GETTER(property_get_name, NodeDevice, d, "s", d->name);
BUS_PROPERTY_GETTER(property_get_parent, NodeDevice, d, "s", strempty(nodedev_parent(d)));
BUS_PROPERTY_GETTER(property_get_driver, NodeDevice, d, "s", strempty(nodedev_driver(d)));

static int property_get_capabilities(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        NodeDevice *d = userdata;
        _cleanup_free_ const char **l = NULL;
        int r;

        r = nodedev_def_capability_names(d->def, &l);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, (char **) l);
}

static const sd_bus_vtable nodedev_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Parent", "s", property_get_parent, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Capabilities", "as", property_get_capabilities, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Driver", "s", property_get_driver, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("GetXMLDesc", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", xml),
                                method_get_xml_desc, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Detach", SD_BUS_ARGS("s", driver, "t", flags), SD_BUS_NO_RESULT, method_detach,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ReAttach", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_reattach,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reset", SD_BUS_ARGS("t", flags), SD_BUS_NO_RESULT, method_reset,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetVirtualFunctions", SD_BUS_ARGS("u", count, "t", flags), SD_BUS_NO_RESULT,
                                method_set_virtual_functions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ConfigureVirtualFunction", SD_BUS_ARGS("u", vf, "s", mac, "u", vlan, "t", flags),
                                SD_BUS_NO_RESULT, method_configure_virtual_function, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_nodedev_register(BusServer *s) {
        int r;

        r = sd_bus_add_fallback_vtable(s->bus, NULL, VB_NODEDEV_PREFIX, VB_NODEDEV_INTERFACE, nodedev_vtable,
                                       find_nodedev, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the NodeDevice objects: %m");
        r = sd_bus_add_node_enumerator(s->bus, NULL, VB_NODEDEV_PREFIX, enumerate_nodedevs, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the NodeDevice enumerator: %m");
        return 0;
}

int bus_manager_method_list_node_devices(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusServer *s = userdata;
        NodeDevice *const *l;
        const char *cap;
        uint64_t flags;
        size_t n;
        int r;

        r = sd_bus_message_read(m, "st", &cap, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = bus_reply_list_begin(m, &reply);
        if (r < 0)
                return r;
        n = manager_nodedev_list(s->manager, &l);
        for (size_t i = 0; i < n; i++) {
                if (!isempty(cap) && !nodedev_def_has_capability(l[i]->def, cap))
                        continue;
                r = bus_reply_list_add(reply, bus_nodedev_path(l[i]));
                if (r < 0)
                        return r;
        }
        return bus_reply_list_end(reply);
}

int bus_manager_method_get_node_device_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusServer *s = userdata;
        const char *name;
        NodeDevice *d;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (strlen(name) > NAME_MAX_LEN)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Name too long");
        d = manager_nodedev_by_name(s->manager, name);
        if (!d)
                return sd_bus_error_setf(error, VB_ERROR_PREFIX "NoSuchDevice", "No node device named '%s'", name);
        return bus_reply_path(m, bus_nodedev_path(d));
}

void bus_nodedev_on_added(void *userdata, NodeDevice *d) {
        bus_object_emit_added(userdata, bus_nodedev_path(d), VB_NODEDEV_INTERFACE);
}

void bus_nodedev_on_removed(void *userdata, NodeDevice *d) {
        bus_object_emit_removed(userdata, bus_nodedev_path(d), VB_NODEDEV_INTERFACE);
}

void bus_nodedev_on_changed(void *userdata, NodeDevice *d, const char * const *properties) {
        bus_object_emit_changed(userdata, bus_nodedev_path(d), VB_NODEDEV_INTERFACE, properties);
}
