/* Licensed under the Apache License, Version 2.0 (see LICENSE).
 *
 * sc_ipc.h -- the engine's local socket as its askers see it (a child handing
 * over a request's messages, sc_client.c; `httpd -k stop` announcing a stop,
 * sc_supervisor.c): a connection, and the engine's answer read with a
 * deadline (sc_ipc.c).
 */
#ifndef SC_IPC_H
#define SC_IPC_H

#include "sc_private.h"
#include "sc_proto.h"

/* The engine's answers: SC_MSG_ACK or SC_MSG_FAIL_ACK, a payload of 8 bytes
 * (the engine's time in microseconds) then a sentence of at most this many. */
#define SC_IPC_TEXT_MAX 256
#define SC_IPC_ANSWER_MAX (SC_FRAME_HDR_LEN + 8 + SC_IPC_TEXT_MAX)

/* A connected stream socket (close-on-exec) to the engine at path, or -1
 * with errno set (ENAMETOOLONG for a path longer than a socket's). */
int sc_ipc_connect(const char *path);

/* Sets fd's receive timeout (SO_RCVTIMEO) to ms: sc_ipc_read_answer's first
 * read then waits in recv itself, without a poll(2) before it (a system call
 * less for each synchronous change).  0, or -1 with errno set. */
int sc_ipc_set_wait(int fd, long ms);

/* Reads one answer on fd into buf[SC_IPC_ANSWER_MAX] until deadline (on
 * sc_steady_us's clock, sc_clock.h: a step of the wall clock neither cuts
 * the wait short nor stretches it).  The
 * first read waits in recv for as long as fd's receive timeout
 * (sc_ipc_set_wait, which every asker sets to at most its deadline's
 * distance); what follows a partial read waits in poll(2) for what is left
 * of the deadline.
 * 1: its header in *h, the frame in buf; *extra is 1 when bytes beyond it
 * came too (the stream is out of step).  0: none by the deadline, the
 * connection closed, or a header that is not an answer's. */
int sc_ipc_read_answer(int fd, apr_time_t deadline, unsigned char *buf, sc_frame_hdr *h,
                       int *extra);

/* The same for count answers in a row (at most 2) into buf[count *
 * SC_IPC_ANSWER_MAX]: 1 with answer i's header in h[i], its frame at buf +
 * off[i]; 0 as above, for any of them. */
int sc_ipc_read_answers(int fd, apr_time_t deadline, unsigned char *buf, int count,
                        sc_frame_hdr *h, apr_size_t *off, int *extra);

#endif /* SC_IPC_H */
