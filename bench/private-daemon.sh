# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the benches that run virtbusd (test driver) on a private system-type bus with the real polkitd
# and the project's bus policy: bench_private_daemon VIRTBUSD; then $ADDR is the bus (also in
# DBUS_SYSTEM_BUS_ADDRESS), $DAEMON_PID virtbusd's pid, and PIDS holds the processes to end. Needs WORK,
# ROOT, PIDS, POLICY, INSTALLED_POLICY and log() from the caller.

wait_name() {
        for _ in $(seq 500); do
                busctl --address="$ADDR" call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                        NameHasOwner s "$1" 2>/dev/null | grep -q true && return 0
                sleep 0.02
        done
        log "$1 did not appear"; exit 1
}

bench_private_daemon() {
        local virtbusd=$1 stock
        # polkitd reads actions from a fixed path only (as the integration tests do, the file goes there).
        if [ ! -f "$POLICY" ]; then
                install -m 0644 "$ROOT/polkit/org.virtbus1.policy" "$POLICY"
                INSTALLED_POLICY=1
        fi
        stock=$(sed -n '/<policy context="default">/,/<\/policy>/p' /usr/share/dbus-1/system.conf)
        cat >"$WORK/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
        "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
        <type>system</type>
        <listen>unix:path=$WORK/bus</listen>
        <auth>EXTERNAL</auth>
$stock
        <include>$ROOT/service/org.virtbus1.conf</include>
        <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>
</busconfig>
EOC
        exec 3>"$WORK/addr"
        dbus-daemon --config-file="$WORK/bus.conf" --nofork --nopidfile --print-address=3 2>"$WORK/dbus.log" &
        PIDS+=($!)
        exec 3>&-
        for _ in $(seq 500); do [ -s "$WORK/addr" ] && break; sleep 0.01; done
        ADDR=$(head -1 "$WORK/addr")
        export DBUS_SYSTEM_BUS_ADDRESS=$ADDR

        /usr/lib/polkit-1/polkitd --no-debug >"$WORK/polkitd.log" 2>&1 &
        PIDS+=($!)
        wait_name org.freedesktop.PolicyKit1

        mkdir -p "$WORK/config" "$WORK/state" "$WORK/run"
        "$virtbusd" --bus-address="$ADDR" --driver test --config-dir "$WORK/config" --state-dir "$WORK/state" \
                --runtime-dir "$WORK/run" 2>"$WORK/virtbusd.log" &
        DAEMON_PID=$!
        PIDS+=($!)
        wait_name org.virtbus1
}
