# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the bench scripts that time libvirt 9 (qemu:///system): starts virtlogd and libvirtd unless
# they run, and stops only what it started. A socket left by daemons of an earlier session (their processes
# are gone) does not count as running.
#   libvirt_daemons_up WORKDIR TRIES   (TRIES x 50 ms for libvirtd to answer)
#   libvirt_daemons_down
LIBVIRTD_PID=
VIRTLOGD_PID=
LIBVIRT_VIRSH=(virsh -q -c qemu:///system)

libvirt_daemons_up() {
        local work=$1 tries=$2 i
        if ! pgrep -x virtlogd >/dev/null; then
                rm -f /run/libvirt/virtlogd-sock /run/libvirt/virtlogd-admin-sock /run/virtlogd.pid
                virtlogd >"$work/virtlogd.log" 2>&1 &
                VIRTLOGD_PID=$!
        fi
        if ! "${LIBVIRT_VIRSH[@]}" version >/dev/null 2>&1; then
                libvirtd --timeout 0 >"$work/libvirtd.log" 2>&1 &
                LIBVIRTD_PID=$!
                for i in $(seq "$tries"); do "${LIBVIRT_VIRSH[@]}" version >/dev/null 2>&1 && break; sleep 0.05; done
        fi
}

libvirt_daemons_down() {
        [ -n "$LIBVIRTD_PID" ] && { kill "$LIBVIRTD_PID" 2>/dev/null; wait "$LIBVIRTD_PID" 2>/dev/null || true; }
        [ -n "$VIRTLOGD_PID" ] && { kill "$VIRTLOGD_PID" 2>/dev/null; wait "$VIRTLOGD_PID" 2>/dev/null || true; }
        LIBVIRTD_PID=
        VIRTLOGD_PID=
}
