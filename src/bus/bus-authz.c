/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus/bus-authz.h"
#include "bus/bus-domain-snapshot.h"
#include "bus/bus-domain.h"
#include "bus/bus-network.h"
#include "bus/bus-nodedev.h"
#include "bus/bus-server.h"
#include "bus/bus-storage.h"
#include "util/macro.h"

#define M VB_MANAGER_INTERFACE
#define D VB_DOMAIN_INTERFACE
#define N VB_NETWORK_INTERFACE
#define ND VB_NODEDEV_INTERFACE
#define SP VB_STORAGE_POOL_INTERFACE
#define SV VB_STORAGE_VOL_INTERFACE
#define DS VB_DOMAIN_SNAPSHOT_INTERFACE
#define METHOD BUS_AUTHZ_METHOD
#define WRITE BUS_AUTHZ_PROPERTY_WRITE

const BusAuthzRule bus_authz_rules[] = {
        /* org.virtbus1.Manager */
        { M, "DefineDomain", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain",
          BUS_ACTION_DOMAIN_HOST_FILES " (domain, path) for each host path the caller may not use" },
        { M, "CreateDomain", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain",
          BUS_ACTION_DOMAIN_HOST_FILES " (domain, path) for each host path the caller may not use; "
          BUS_ACTION_HOSTDEV_ASSIGN " (domain) when it uses host devices" },
        { M, "RestoreDomain", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain",
          BUS_ACTION_DOMAIN_HOST_FILES " (domain, path) for each host path the caller may not use" },
        { M, "PrepareMigration", METHOD, BUS_ACTION_DOMAIN_MIGRATE, "domain",
          BUS_ACTION_DOMAIN_HOST_FILES " (domain, path) for each host path the caller may not use" },
        { M, "ListDomains", METHOD, NULL, NULL, NULL },
        { M, "GetDomainByName", METHOD, NULL, NULL, NULL },
        { M, "GetDomainByUUID", METHOD, NULL, NULL, NULL },
        { M, "ListNodeDevices", METHOD, NULL, NULL, NULL },
        { M, "GetNodeDeviceByName", METHOD, NULL, NULL, NULL },
        { M, "DefineNetwork", METHOD, BUS_ACTION_NETWORK_MANAGE, "network",
          BUS_ACTION_NETWORK_HOST_FILES " (network, path) for a TFTP root not of the caller's own" },
        { M, "CreateNetwork", METHOD, BUS_ACTION_NETWORK_MANAGE, "network",
          BUS_ACTION_NETWORK_HOST_FILES " (network, path) for a TFTP root not of the caller's own" },
        { M, "ListNetworks", METHOD, NULL, NULL, NULL },
        { M, "GetNetworkByName", METHOD, NULL, NULL, NULL },
        { M, "GetDomainCapabilities", METHOD, NULL, NULL, NULL },
        { M, "GetCapabilities", METHOD, NULL, NULL, NULL },
        { M, "GetAllDomainStats", METHOD, NULL, NULL, NULL },
        { M, "DefineStoragePool", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { M, "CreateStoragePool", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { M, "ListStoragePools", METHOD, NULL, NULL, NULL },
        { M, "GetStoragePoolByName", METHOD, NULL, NULL, NULL },
        { M, "GetStorageVolByPath", METHOD, NULL, NULL, NULL },
        { M, "LogLevel", WRITE, BUS_ACTION_MANAGE, NULL, NULL },

        /* org.virtbus1.Domain */
        { D, "Start", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", BUS_ACTION_HOSTDEV_ASSIGN " (domain) when it uses host devices" },
        { D, "Shutdown", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Reboot", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Reset", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Destroy", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Suspend", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Resume", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Undefine", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Rename", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "GetXMLDesc", METHOD, NULL, NULL, BUS_ACTION_DOMAIN_READ_SECURE " (domain) with flag 2 (secrets)" },
        { D, "AttachDevice", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain",
          BUS_ACTION_HOSTDEV_ASSIGN " (domain, device) instead for a device of the host; "
          BUS_ACTION_DOMAIN_HOST_FILES " (domain, path) for each host path the caller may not use" },
        { D, "DetachDevice", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain",
          BUS_ACTION_HOSTDEV_ASSIGN " (domain, device) instead for a device of the host" },
        { D, "UpdateDevice", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain",
          BUS_ACTION_HOSTDEV_ASSIGN " (domain, device) instead for a device of the host; "
          BUS_ACTION_DOMAIN_HOST_FILES " (domain, path) for each host path the caller may not use" },
        { D, "GetStats", METHOD, NULL, NULL, NULL },
        { D, "GetGuestInfo", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "InterfaceAddresses", METHOD, NULL, NULL,
          BUS_ACTION_DOMAIN_MANAGE " (domain) with source 1 (the guest agent runs code in the guest)" },
        { D, "OpenConsole", METHOD, BUS_ACTION_DOMAIN_CONSOLE, "domain", NULL },
        { D, "OpenGraphics", METHOD, BUS_ACTION_DOMAIN_CONSOLE, "domain",
          BUS_ACTION_DOMAIN_READ_SECURE " (domain) with flag 1 (skip the display's password)" },
        { D, "Screenshot", METHOD, BUS_ACTION_DOMAIN_CONSOLE, "domain", NULL },
        { D, "CreateSnapshot", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain,snapshot", NULL },
        { D, "ListSnapshots", METHOD, NULL, NULL, NULL },
        { D, "Save", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "ManagedSave", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "ManagedSaveRemove", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "MigrateTo", METHOD, BUS_ACTION_DOMAIN_MIGRATE, "domain,address", NULL },
        { D, "FinishMigration", METHOD, BUS_ACTION_DOMAIN_MIGRATE, "domain", NULL },
        { D, "AbortMigration", METHOD, BUS_ACTION_DOMAIN_MIGRATE, "domain", NULL },
        { D, "StartPostcopy", METHOD, BUS_ACTION_DOMAIN_MIGRATE, "domain", NULL },

        /* org.virtbus1.DomainSnapshot */
        { DS, "GetXMLDesc", METHOD, NULL, NULL, NULL },
        { DS, "Revert", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain,snapshot", NULL },
        { DS, "Delete", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain,snapshot", NULL },
        { DS, "ListChildren", METHOD, NULL, NULL, NULL },
        { D, "SetMemory", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "SetVCPUs", METHOD, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },
        { D, "Autostart", WRITE, BUS_ACTION_DOMAIN_MANAGE, "domain", NULL },

        /* org.virtbus1.Network */
        { N, "Start", METHOD, BUS_ACTION_NETWORK_MANAGE, "network", NULL },
        { N, "Stop", METHOD, BUS_ACTION_NETWORK_MANAGE, "network", NULL },
        { N, "Undefine", METHOD, BUS_ACTION_NETWORK_MANAGE, "network", NULL },
        { N, "GetXMLDesc", METHOD, NULL, NULL, NULL },
        { N, "GetDHCPLeases", METHOD, NULL, NULL, NULL },
        { N, "Autostart", WRITE, BUS_ACTION_NETWORK_MANAGE, "network", NULL },

        /* org.virtbus1.StoragePool */
        { SP, "Start", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { SP, "Stop", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { SP, "Build", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { SP, "Delete", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { SP, "Refresh", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { SP, "Undefine", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },
        { SP, "GetXMLDesc", METHOD, NULL, NULL, NULL },
        { SP, "ListVolumes", METHOD, NULL, NULL, NULL },
        { SP, "GetVolumeByName", METHOD, NULL, NULL, NULL },
        { SP, "CreateVolume", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },
        /* Asked twice: for the new volume, and for the source (its pool and name). */
        { SP, "CreateVolumeFrom", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },
        { SP, "Autostart", WRITE, BUS_ACTION_STORAGE_MANAGE, "pool", NULL },

        /* org.virtbus1.StorageVol */
        { SV, "GetXMLDesc", METHOD, NULL, NULL, NULL },
        { SV, "Delete", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },
        { SV, "Wipe", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },
        { SV, "Resize", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },
        { SV, "Upload", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },
        { SV, "Download", METHOD, BUS_ACTION_STORAGE_MANAGE, "pool,volume", NULL },

        /* org.virtbus1.NodeDevice */
        { ND, "GetXMLDesc", METHOD, NULL, NULL, NULL },
        { ND, "Detach", METHOD, BUS_ACTION_NODEDEV_MANAGE, "device,address", NULL },
        { ND, "ReAttach", METHOD, BUS_ACTION_NODEDEV_MANAGE, "device,address", NULL },
        { ND, "Reset", METHOD, BUS_ACTION_NODEDEV_MANAGE, "device,address", NULL },
        { ND, "SetVirtualFunctions", METHOD, BUS_ACTION_SRIOV_CONFIGURE, "device,address", NULL },
        { ND, "ConfigureVirtualFunction", METHOD, BUS_ACTION_SRIOV_CONFIGURE, "device,address", NULL },
};

const size_t bus_authz_n_rules = ELEMENTSOF(bus_authz_rules);

const BusAuthzRule *bus_authz_find(const char *interface, const char *member, BusAuthzKind kind) {
        for (size_t i = 0; i < bus_authz_n_rules; i++)
                if (bus_authz_rules[i].kind == kind && streq(bus_authz_rules[i].interface, interface) &&
                    streq(bus_authz_rules[i].member, member))
                        return &bus_authz_rules[i];
        return NULL;
}
