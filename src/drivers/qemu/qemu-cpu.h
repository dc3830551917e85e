/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conf/domain-conf.h"
#include "conf/domaincaps-conf.h"
#include "drivers/qemu/qemu-caps.h"

/* CPU models from QEMU's answers (qemu-caps-probe.c keeps the static expansion of every x86 model, of "max"
 * under TCG and of "host" under KVM): the host-model CPU, the models' vendors, and feature names as the
 * domain XML spells them. No CPU map of our own: what a model is made of is what QEMU says it is. */

typedef struct QemuHostModel {
        char *model;  /* the named model closest to the CPU QEMU offers on this host */
        char *vendor; /* "AMD", "Intel", ...; NULL when QEMU's vendor has no name here */
        char **require; /* features to add to the model, in the domain XML's names */
        size_t n_require;
        char **disable; /* features of the model to take away */
        size_t n_disable;
} QemuHostModel;

QemuHostModel *qemu_host_model_free(QemuHostModel *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(QemuHostModel *, qemu_host_model_free);

/* The host-model CPU for KVM (QEMU's "host") or TCG (QEMU's "max"): among the models whose vendor is the
 * host's or none, the one that needs the fewest features added and taken away (ties: fewer taken away,
 * then QEMU's order). Features QEMU cannot give a guest as a CPU model property are left out: the KVM
 * paravirtual leaf (kvm*), and IA32_ARCH_CAPABILITIES with the bits read from it (QEMU aborts on hosts
 * whose KVM lists it but cannot set it, e.g. KVM_PVM; host-passthrough hides it likewise). -ENODATA when
 * the probe has no expansion for it (not x86, or no KVM). */
int qemu_cpu_host_model(const QemuCaps *c, bool kvm, QemuHostModel **ret);

/* The vendor of a listed model as the domain XML names it: "Intel", "AMD", ... or "unknown" for QEMU's
 * generic models (qemu64, kvm64, pentium, ...: no model id of a real CPU); NULL when not probed. */
const char *qemu_cpu_model_vendor(const QemuCaps *c, const char *model);

/* A QEMU feature name as the domain XML spells it (cmp-legacy -> cmp_legacy), and back. */
const char *qemu_cpu_feature_to_xml(const char *qemu_name);
const char *qemu_cpu_feature_from_xml(const char *name);

/* Whether the CPU has the property (hv-spinlocks, hv-vendor-id, ...). */
bool qemu_cpu_has_property(const QemuCaps *c, const char *prop);

/* A Hyper-V enlightenment: its element in <features><hyperv> (under parent when set), QEMU's CPU
 * property, and the enlightenments it needs on ("#timer": a <clock><timer>). The table ends with xml NULL. */
typedef struct QemuHypervFeature {
        const char *xml, *parent, *prop;
        const char *needs[2];
} QemuHypervFeature;

const QemuHypervFeature *qemu_cpu_hyperv_features(void);

/* For a start: def with <cpu mode='host-model'> expanded as caps' host-model says (<model fallback='forbid'>
 * and a <feature policy='require|disable'> each, the user's own <feature>s winning), as the live definition
 * shows it; *ret NULL when there is nothing to expand. NotSupported when caps offer no host-model. */
int qemu_cpu_expand_host_model(const DomainCaps *caps, const DomainDef *def, DomainDef **ret, VbError *reterr);

/* The -cpu argument for def's <cpu> and <features><hyperv> (*ret NULL: no -cpu, QEMU's default CPU):
 * host-passthrough "host" (KVM only), maximum "max", host-model (expanded) and custom the model with
 * feature=on|off, hv-spinlocks and hv-vendor-id. */
int qemu_cpu_argument(const ConfNode *root, bool kvm, char **ret, VbError *reterr);
