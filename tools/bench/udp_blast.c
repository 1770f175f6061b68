/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License. You may obtain
 * a copy of the License at
 *
 *      http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 * WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 * License for the specific language governing permissions and limitations
 * under the License.
 *
 * One-way UDP load for tools/bench/datapath.py.
 *
 *   udp_blast send ADDRESS PORT SECONDS   64-byte datagrams as fast as
 *                                         sendmmsg takes them; prints the
 *                                         count and the seconds taken
 *   udp_blast sink ADDRESS PORT           reads without ever sleeping
 *                                         until SIGTERM
 *
 * The sink spins so that the sender never has to wake it: a waking
 * receiver costs the sender an inter-processor interrupt per wake-up, which
 * on a virtual machine is dearer than the whole firewall and grows as the
 * sender slows down, amplifying any per-packet cost several times.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define PAYLOAD 64

static volatile sig_atomic_t stopping;

static void on_signal(int signum)
{
    (void)signum;
    stopping = 1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int udp_socket(const char *address, int port, struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, address, &sin->sin_addr) != 1) {
        fprintf(stderr, "not an IPv4 address: %s\n", address);
        exit(2);
    }
    return fd;
}

static int send_for(const char *address, int port, double seconds)
{
    struct sockaddr_in sin;
    int fd = udp_socket(address, port, &sin);
    static char payload[PAYLOAD];
    struct iovec iov = {payload, PAYLOAD};
    struct mmsghdr msgs[BATCH];
    unsigned long long sent = 0, refused = 0;
    double start, end;
    int i;

    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        perror("connect");
        return 1;
    }
    memset(msgs, 0, sizeof(msgs));
    for (i = 0; i < BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    start = now();
    end = start + seconds;
    while (!stopping) {
        int n = sendmmsg(fd, msgs, BATCH, 0);

        if (n > 0)
            sent += n;
        else if (errno == ECONNREFUSED || errno == ENOBUFS)
            refused++;
        else if (errno != EINTR) {
            perror("sendmmsg");
            return 1;
        }
        if ((sent & 1023) < BATCH && now() >= end)
            break;
    }
    printf("{\"sent\": %llu, \"seconds\": %.6f, \"errors\": %llu}\n",
           sent, now() - start, refused);
    return 0;
}

static int sink(const char *address, int port)
{
    struct sockaddr_in sin;
    int fd = udp_socket(address, port, &sin);
    static char buffers[BATCH][PAYLOAD];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    int i;

    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        perror("bind");
        return 1;
    }
    memset(msgs, 0, sizeof(msgs));
    for (i = 0; i < BATCH; i++) {
        iov[i].iov_base = buffers[i];
        iov[i].iov_len = PAYLOAD;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);
    while (!stopping)
        recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction action;

    memset(&action, 0, sizeof(action));
    action.sa_handler = on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return send_for(argv[2], atoi(argv[3]), atof(argv[4]));
    if (argc == 4 && strcmp(argv[1], "sink") == 0)
        return sink(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: %s send ADDRESS PORT SECONDS | "
            "sink ADDRESS PORT\n", argv[0]);
    return 2;
}
