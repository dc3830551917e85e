/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* virtbus-xml's warm server, for callers that run it thousands of times (the corpus scorer, the refusal
 * variants): the server compiles every schema once, then forks a child per request that runs the normal
 * command (the handler given) with the caller's arguments, working directory and stdin/stdout/stderr,
 * and hands its exit status, or the signal that ended it, back to the caller. */

/* The variable that names the server's socket in the environment of the command the server runs. */
#define XML_SERVER_ENV "VIRTBUS_XML_SERVER"

typedef int (*XmlServerHandler)(int argc, char *argv[]);

/* virtbus-xml serve -- COMMAND...: compiles the schemas, listens on a socket in a new temporary
 * directory, runs COMMAND with XML_SERVER_ENV naming it, answers requests until COMMAND ends, and
 * returns COMMAND's exit status (128 + the signal if one ended it). */
int xml_server_run(char **command, XmlServerHandler handler);

/* Runs argv through the server at path. Returns -errno when no request could be sent (the caller then
 * runs the command itself); else the command's exit status. When a signal ended the command, the caller
 * is ended by the same signal. */
int xml_server_call(const char *path, int argc, char *argv[]);
