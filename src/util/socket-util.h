/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A listening AF_UNIX stream socket (CLOEXEC) bound to path, replacing a stale socket file there.
 * -ENAMETOOLONG if path does not fit sun_path. */
int socket_listen_unix(const char *path, int backlog, int *ret_fd);
