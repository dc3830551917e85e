/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/child-wait.h"
#include "host/nft.h"
#include "util/log.h"

extern char **environ;

/* VIRTBUS_NFT overrides the search (for tests: a wrapper that holds nft back). */
static const char *nft_path(void) {
        static const char * const candidates[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };
        const char *p = getenv("VIRTBUS_NFT");

        if (p && *p)
                return p;

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

/* Runs nft with args and waits for it (it takes milliseconds). Returns its exit status, or -errno. */
static int run_nft(const char * const *args, size_t n_args) {
        const char *argv[n_args + 2];
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        pid_t pid;
        int status, r;

        argv[0] = nft_path();
        if (!argv[0])
                return -ENOENT;
        for (size_t i = 0; i < n_args; i++)
                argv[i + 1] = args[i];
        argv[n_args + 1] = NULL;
        /* Its output (listings) is of no interest; errors go to our stderr, i.e. the log. */
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        /* A process group of its own: killed with what it started when virtbusd stops (child-wait.h). */
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn(&pid, argv[0], &fa, &attr, (char **) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        r = host_child_wait(pid, &status);
        if (r < 0)
                return r;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int host_nft_load(const char *path) {
        int r = run_nft((const char *[]) { "-f", path }, 2);

        if (r < 0)
                return r;
        return r == 0 ? 0 : -EIO;
}

int host_nft_delete_table(const char *family, const char *name) {
        int r;

        if (!host_nft_table_exists(family, name))
                return -ENOENT;
        r = run_nft((const char *[]) { "delete", "table", family, name }, 4);
        if (r < 0)
                return r;
        return r == 0 ? 0 : -EIO;
}

bool host_nft_table_exists(const char *family, const char *name) {
        int r = run_nft((const char *[]) { "-t", "list", "table", family, name }, 5);
        return r == 0;
}
