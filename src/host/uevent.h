/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The kernel's device events (uevents) as it multicasts them on NETLINK_KOBJECT_UEVENT, group 1. One
 * message is a header "ACTION@DEVPATH" and then "KEY=value" strings, each ending in a NUL:
 *
 *   add@/devices/virtual/net/veth0\0ACTION=add\0DEVPATH=/devices/virtual/net/veth0\0SUBSYSTEM=net\0...
 *
 * udev re-sends what it processed on group 2 in a binary format starting with "libudev\0"; with no udev
 * here (and to depend on none) only the kernel's own messages are read. Events for network interfaces of
 * another network namespace reach only the sockets of that namespace. */

/* A message of up to this size is received whole (the kernel's own limit is 2048 bytes of keys). */
#define HOST_UEVENT_BUFFER_SIZE 8192

/* One parsed message; the strings point into the buffer that was parsed. */
typedef struct HostUevent {
        const char *action;    /* "add", "remove", "change", "move", "bind", "unbind", "online", "offline" */
        const char *devpath;   /* below the sysfs root: "/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0" */
        const char *subsystem; /* "pci", "net", "usb"...; NULL when the message names none */
        const char *devtype;   /* "usb_device", "usb_interface"...; or NULL */
        uint64_t seqnum;       /* 0 when the message has none */
} HostUevent;

/* A socket bound to the kernel's multicast group: non-blocking, close-on-exec, with a receive queue made
 * large enough for a burst of events where allowed. Returns the fd, or -errno. */
int host_uevent_open(void);

/* Parses buf[0, len): 1 and *ret for a message in the kernel's format; 0 for udev's ("libudev"), which is
 * not ours to read; -EBADMSG if malformed (no "ACTION@DEVPATH" header, a string without its NUL, ACTION= or
 * DEVPATH= contradicting the header). */
int host_uevent_parse(const char *buf, size_t len, HostUevent *ret);

/* Receives one message into buf (size bytes; HOST_UEVENT_BUFFER_SIZE is enough) and parses it: 1 and *ret
 * for an event of the kernel; 0 for a message to ignore (not sent by the kernel, i.e. its netlink port is
 * not 0, truncated, udev's or malformed); -EAGAIN when nothing is waiting; -ENOBUFS when the queue
 * overflowed and events were lost; another -errno on failure. */
int host_uevent_receive(int fd, char *buf, size_t size, HostUevent *ret);
