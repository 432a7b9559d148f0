/*
 * /init of the recording initramfs (see record.sh).
 *
 * Runs as PID 1 in a QEMU guest booted with Debian's own kernel image.  For
 * each scenario it points ftrace's function_graph tracer at one syscall entry
 * (set_graph_function, limited to this process by set_ftrace_pid), performs
 * that syscall on a socket prepared beforehand, stops tracing and copies the
 * `trace` file to the second serial port (/dev/ttyS1), framed as
 *
 *     @@ BEGIN <trace-id> <graph functions>
 *     ...function_graph output...
 *     @@ END <trace-id>
 *
 * It also copies available_filter_functions once (trace-id "__filters__") and
 * the kernel's uname.  parse_graph.py turns that stream into call chains.
 *
 * Tracing files are written with pwrite() and read with pread(), so that the
 * tracer's own control traffic never matches a traced write()/read() entry.
 *
 * Build: gcc -static -O2 -o init init.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/reboot.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#define TR "/sys/kernel/tracing/"

static int out = -1;            /* data channel: /dev/ttyS1, raw mode */

/* ---- small helpers ------------------------------------------------------ */

static void say(const char *fmt, ...)          /* to the data channel */
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (write(out, buf, n) < 0) { /* nothing to do */ }
}

static void die(const char *what)
{
	say("@@ FATAL %s: %s\n", what, strerror(errno));
	sync();
	reboot(RB_POWER_OFF);
	_exit(1);
}

/* Write a string into a control file (truncating), with pwrite(2) so that a
 * traced write(2) entry never sees it; the one file that cannot pwrite is
 * written once, before any tracing. */
static void put(const char *path, const char *val)
{
	size_t len = strlen(val), done = 0;
	ssize_t n = 0;
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		n = -1;
	/* filter files take one name per write() call: loop until all is in */
	while (fd >= 0 && done < len) {
		n = pwrite(fd, val + done, len - done, done);
		if (n < 0 && errno == ESPIPE)   /* set_ftrace_pid has no pwrite */
			n = write(fd, val + done, len - done);
		if (n <= 0)
			break;
		done += n;
	}
	if (n < 0) {
		say("@@ WARN put %s=%s: %s\n", path, val, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
}

/* Read a whole file (tracefs/procfs) into a NUL-terminated heap buffer. */
static char *slurp(const char *path)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap + 1);
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf)
		die(path);
	while ((n = pread(fd, buf + len, cap - len, len)) > 0) {
		len += n;
		if (len == cap && !(buf = realloc(buf, (cap *= 2) + 1)))
			die("realloc");
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/* Send a buffer to the data channel, framed as one block. */
static void ship(const char *id, const char *graph, const char *text)
{
	size_t len = strlen(text), off = 0;
	say("@@ BEGIN %s %s\n", id, graph);
	while (off < len) {
		ssize_t w = write(out, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("write ttyS1");
		}
		off += w;
	}
	say("@@ END %s\n", id);
}

static void dump(const char *id, const char *graph, const char *path)
{
	char *text = slurp(path);
	ship(id, graph, text);
	free(text);
}

/* ---- tracing: one graph per scenario ------------------------------------ */

static const char *cur_id, *cur_graph;

/* Arm function_graph for the given entry functions (space separated). */
static void trace_begin(const char *id, const char *graph)
{
	cur_id = id;
	cur_graph = graph;
	usleep(20000);          /* let ksoftirqd and kworkers go back to sleep */
	put(TR "set_graph_function", graph);
	put(TR "trace", "");                   /* clear the ring buffer */
	put(TR "tracing_on", "1");
}

/* Stop tracing.  If `must` (a "name()" string) is given, not in the trace,
 * and this is not the last try, drop the trace and return 0 so the caller
 * repeats the call; else ship the trace and return 1.  Used where the
 * loopback receive must run inline: under a slow emulated CPU, softirq work
 * is sometimes handed to ksoftirqd (another task, so not in our graph). */
static int trace_end_if(const char *must, int last)
{
	put(TR "tracing_on", "0");
	char *text = slurp(TR "trace");
	int keep = last || !must || strstr(text, must);
	if (keep)
		ship(cur_id, cur_graph, text);
	else
		say("@@ RETRY %s: no %s\n", cur_id, must);
	free(text);
	return keep;
}

static void trace_end(void)
{
	trace_end_if(NULL, 1);
}

/* Trace `call` until its graph contains `must` (at most 5 tries). */
#define TRACE_UNTIL(id, graph, must, call)                               \
	for (int try_ = 1;; try_++) {                                    \
		trace_begin(id, graph);                                  \
		call;                                                    \
		if (trace_end_if(must, try_ == 5))                       \
			break;                                           \
	}

/* ---- sockets ------------------------------------------------------------ */

static struct sockaddr_in sin4(const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static struct sockaddr_in6 sin6(const char *ip, int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return a;
}

static int sock(int fam, int type, int proto)
{
	int fd = socket(fam, type, proto);
	if (fd < 0) {
		say("@@ WARN socket(%d,%d,%d): %s\n", fam, type, proto, strerror(errno));
		return -1;
	}
	return fd;
}

#define SA(x) ((struct sockaddr *)&(x)), sizeof(x)

/* Raw syscalls, so that libc cannot pick a different entry (send -> sendto). */
#define SENDTO(fd, b, n, ...)   syscall(SYS_sendto, fd, b, n, 0, __VA_ARGS__)
#define RECVFROM(fd, b, n)      syscall(SYS_recvfrom, fd, b, n, 0, NULL, NULL)

static char payload[64] = "ksrcgraph recorded trace payload";
static char big[20000];
static char rbuf[65536];

/* Empty a datagram socket's receive queue (after a short wait, in case
 * some of it was left to ksoftirqd). */
static void drain(int fd)
{
	usleep(20000);
	while (recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT) >= 0)
		;
}

/* Bring `lo` up: IPv4 127.0.0.1 and IPv6 ::1 come with it. */
static void lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die("SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		die("SIOCSIFFLAGS");
	close(fd);
}

/* ---- the scenarios ------------------------------------------------------ */

static void udp_scenarios(void)
{
	struct sockaddr_in dst = sin4("127.0.0.1", 6000);
	int r = sock(AF_INET, SOCK_DGRAM, 0), s = sock(AF_INET, SOCK_DGRAM, 0);
	int n;
	if (bind(r, SA(dst)) < 0)
		die("bind udp");

	/* Untraced first: the first packet to a destination resolves its
	 * neighbour (neigh_resolve_output); the traced sends take the path
	 * every later packet takes (the cached header). */
	SENDTO(s, payload, sizeof payload, SA(dst));
	drain(r);

	/* 1, 14: sendto over loopback; the receive runs nested in softirq. */
	TRACE_UNTIL("udp4-sendto", "__x64_sys_sendto", "udp_queue_rcv_skb()",
		    SENDTO(s, payload, sizeof payload, SA(dst)));
	drain(r);

	/* 8: recvfrom with a datagram already queued. */
	SENDTO(s, payload, sizeof payload, SA(dst));
	trace_begin("udp4-recvfrom", "__x64_sys_recvfrom");
	RECVFROM(r, rbuf, sizeof rbuf);
	trace_end();

	/* 8: a datagram too big for one linear skb (> SKB_MAX_ALLOC) is
	 * copied out with skb_copy_datagram_iter, a small one is not. */
	SENDTO(s, big, sizeof big, SA(dst));
	trace_begin("udp4-recvfrom-big", "__x64_sys_recvfrom");
	RECVFROM(r, rbuf, sizeof rbuf);
	trace_end();

	/* 13: recvmsg on udp (queue one first, untraced). */
	SENDTO(s, payload, sizeof payload, SA(dst));
	struct iovec iov = { rbuf, sizeof rbuf };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	trace_begin("udp4-recvmsg", "__x64_sys_recvmsg");
	syscall(SYS_recvmsg, r, &mh, 0);
	trace_end();

	/* sendmsg on an unconnected udp socket. */
	struct iovec siov = { payload, sizeof payload };
	struct msghdr smh = { .msg_name = &dst, .msg_namelen = sizeof dst,
			      .msg_iov = &siov, .msg_iovlen = 1 };
	trace_begin("udp4-sendmsg", "__x64_sys_sendmsg");
	syscall(SYS_sendmsg, s, &smh, 0);
	trace_end();

	/* 11: ioctl FIONREAD (== SIOCINQ) with that datagram queued. */
	trace_begin("udp4-ioctl-fionread", "__x64_sys_ioctl");
	ioctl(r, FIONREAD, &n);
	trace_end();
	RECVFROM(r, rbuf, sizeof rbuf);

	/* 11: ioctl SIOCGIFFLAGS on a udp socket. */
	struct ifreq ifr = { 0 };
	strcpy(ifr.ifr_name, "lo");
	trace_begin("udp4-ioctl-siocgifflags", "__x64_sys_ioctl");
	ioctl(s, SIOCGIFFLAGS, &ifr);
	trace_end();

	/* 10: write() on a connected udp socket. */
	if (connect(s, SA(dst)) < 0)
		die("connect udp");
	trace_begin("udp4-write", "__x64_sys_write");
	write(s, payload, sizeof payload);
	trace_end();
	RECVFROM(r, rbuf, sizeof rbuf);
	close(s);
	close(r);
}

static void udp6_scenarios(void)
{
	struct sockaddr_in6 dst = sin6("::1", 6001);
	int r = sock(AF_INET6, SOCK_DGRAM, 0), s = sock(AF_INET6, SOCK_DGRAM, 0);
	if (r < 0 || s < 0)
		return;
	if (bind(r, SA(dst)) < 0) {
		say("@@ WARN bind ::1: %s\n", strerror(errno));
		return;
	}
	/* 2: sendto ::1, after an untraced one (neighbour resolved, as above) */
	SENDTO(s, payload, sizeof payload, SA(dst));
	drain(r);
	TRACE_UNTIL("udp6-sendto", "__x64_sys_sendto", "udpv6_queue_rcv_skb()",
		    SENDTO(s, payload, sizeof payload, SA(dst)));
	close(s);
	close(r);
}

static void tcp_scenarios(void)
{
	struct sockaddr_in addr = sin4("127.0.0.1", 7000);
	int one = 1, l, c, a;

	/* 5: socket(AF_INET, SOCK_STREAM, 0) */
	trace_begin("tcp4-socket", "__x64_sys_socket");
	l = socket(AF_INET, SOCK_STREAM, 0);
	trace_end();
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);

	/* 15: bind, listen */
	trace_begin("tcp4-bind", "__x64_sys_bind");
	bind(l, SA(addr));
	trace_end();
	trace_begin("tcp4-listen", "__x64_sys_listen");
	listen(l, 8);
	trace_end();

	c = sock(AF_INET, SOCK_STREAM, 0);
	/* 15: setsockopt(TCP_NODELAY) */
	trace_begin("tcp4-setsockopt", "__x64_sys_setsockopt");
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	trace_end();

	/* 3: connect; the SYN, SYN-ACK and ACK all run inside the call. */
	trace_begin("tcp4-connect", "__x64_sys_connect");
	connect(c, SA(addr));
	trace_end();

	/* 15: accept (the connection is already established). */
	trace_begin("tcp4-accept", "__x64_sys_accept");
	a = syscall(SYS_accept, l, NULL, NULL);
	trace_end();

	/* 4: send on the connected socket. */
	TRACE_UNTIL("tcp4-sendto", "__x64_sys_sendto", "tcp_v4_rcv()",
		    SENDTO(c, payload, sizeof payload, NULL, 0));
	usleep(20000);

	/* 9: read() with that data queued on the accepted socket. */
	trace_begin("tcp4-read", "__x64_sys_read");
	read(a, rbuf, sizeof rbuf);
	trace_end();

	/* 15: shutdown(SHUT_WR) sends a FIN. */
	trace_begin("tcp4-shutdown", "__x64_sys_shutdown");
	shutdown(c, SHUT_WR);
	trace_end();

	/* 15: close; the release runs from task_work at syscall exit, so the
	 * graph also starts at task_work_run. */
	trace_begin("tcp4-close", "__x64_sys_close task_work_run");
	close(c);
	trace_end();
	close(a);
	close(l);
}

static void tcp6_scenarios(void)
{
	struct sockaddr_in6 addr = sin6("::1", 7001);
	int one = 1, l = sock(AF_INET6, SOCK_STREAM, 0), c;
	if (l < 0)
		return;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, SA(addr)) < 0 || listen(l, 8) < 0) {
		say("@@ WARN tcp6 listen: %s\n", strerror(errno));
		return;
	}
	c = sock(AF_INET6, SOCK_STREAM, 0);
	trace_begin("tcp6-connect", "__x64_sys_connect");
	connect(c, SA(addr));
	trace_end();
	close(c);
	close(l);
}

static void ping_raw_scenarios(void)
{
	struct sockaddr_in dst = sin4("127.0.0.1", 0);

	/* 6: ping socket; the kernel fills in id and checksum. */
	int p = sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (p >= 0) {
		struct icmphdr echo = { .type = ICMP_ECHO, .un.echo.sequence = htons(1) };
		trace_begin("ping4-sendto", "__x64_sys_sendto");
		SENDTO(p, &echo, sizeof echo, SA(dst));
		trace_end();
		close(p);
	}

	/* 7: raw socket, protocol UDP: the kernel adds the IP header. */
	int r = sock(AF_INET, SOCK_RAW, IPPROTO_UDP);
	if (r >= 0) {
		struct udphdr u = { .source = htons(1), .dest = htons(9), .len = htons(8) };
		trace_begin("raw4-udp-sendto", "__x64_sys_sendto");
		SENDTO(r, &u, sizeof u, SA(dst));
		trace_end();
		close(r);
	}

	/* 7: raw socket, IPPROTO_RAW (implies IP_HDRINCL): we write the header. */
	r = sock(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (r >= 0) {
		struct { struct iphdr ip; struct udphdr u; } pkt = {
			.ip = { .ihl = 5, .version = 4, .ttl = 64, .protocol = IPPROTO_UDP,
				.tot_len = htons(sizeof pkt),
				.saddr = htonl(INADDR_LOOPBACK), .daddr = htonl(INADDR_LOOPBACK) },
			.u = { .source = htons(1), .dest = htons(9), .len = htons(8) },
		};
		trace_begin("raw4-hdrincl-sendto", "__x64_sys_sendto");
		SENDTO(r, &pkt, sizeof pkt, SA(dst));
		trace_end();
		close(r);
	}
}

static void packet_scenarios(void)
{
	/* 15: AF_PACKET raw: a whole Ethernet frame out of lo (ifindex 1).
	 * Protocol 0 on socket(), so this socket receives nothing itself. */
	int p = sock(AF_PACKET, SOCK_RAW, 0);
	if (p < 0)
		return;
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("lo"),
				  .sll_protocol = htons(0x88b5), .sll_halen = ETH_ALEN };
	unsigned char frame[60] = { 0 };
	frame[12] = 0x88; frame[13] = 0xb5;     /* IEEE local experimental ethertype */
	trace_begin("packet-sendto", "__x64_sys_sendto");
	SENDTO(p, frame, sizeof frame, SA(ll));
	trace_end();
	close(p);
}

static void unix_scenarios(void)
{
	int sv[2];

	/* 15: socketpair(AF_UNIX, SOCK_STREAM) */
	trace_begin("unix-socketpair", "__x64_sys_socketpair");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	trace_end();

	/* 12: sendmsg on a unix stream socket wakes the peer. */
	struct iovec iov = { payload, sizeof payload };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	trace_begin("unix-stream-sendmsg", "__x64_sys_sendmsg");
	syscall(SYS_sendmsg, sv[0], &mh, 0);
	trace_end();

	/* 13: recvmsg on the other end. */
	struct iovec riov = { rbuf, sizeof rbuf };
	struct msghdr rmh = { .msg_iov = &riov, .msg_iovlen = 1 };
	trace_begin("unix-stream-recvmsg", "__x64_sys_recvmsg");
	syscall(SYS_recvmsg, sv[1], &rmh, 0);
	trace_end();
	close(sv[0]);
	close(sv[1]);

	/* 12: unix dgram sendto a bound (abstract) address. */
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	memcpy(un.sun_path, "\0ksrcgraph", 10);
	socklen_t ul = offsetof(struct sockaddr_un, sun_path) + 10;
	int d = sock(AF_UNIX, SOCK_DGRAM, 0), u = sock(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(d, (struct sockaddr *)&un, ul) < 0)
		die("bind unix");
	trace_begin("unix-dgram-sendto", "__x64_sys_sendto");
	SENDTO(u, payload, sizeof payload, &un, ul);
	trace_end();

	trace_begin("unix-dgram-recvfrom", "__x64_sys_recvfrom");
	RECVFROM(d, rbuf, sizeof rbuf);
	trace_end();
	close(d);
	close(u);
}

/* ---- main --------------------------------------------------------------- */

int main(void)
{
	struct utsname un;
	struct termios t;
	char pid[32];

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);

	out = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (out < 0)
		reboot(RB_POWER_OFF);
	if (tcgetattr(out, &t) == 0) {          /* raw: no \n -> \r\n mangling */
		cfmakeraw(&t);
		cfsetospeed(&t, B115200);
		tcsetattr(out, TCSANOW, &t);
	}

	uname(&un);
	say("@@ UNAME %s %s %s %s\n", un.sysname, un.release, un.version, un.machine);

	lo_up();
	put("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");

	dump("__filters__", "-", TR "available_filter_functions");

	/* function_graph, only this process, no columns we do not parse. */
	put(TR "tracing_on", "0");
	put(TR "buffer_size_kb", "32768");
	put(TR "current_tracer", "function_graph");
	put(TR "max_graph_depth", "0");
	snprintf(pid, sizeof pid, "%d", getpid());
	put(TR "set_ftrace_pid", pid);
	put(TR "options/funcgraph-irqs", "1");
	put(TR "options/funcgraph-tail", "1");  /* closers name their function */
	put(TR "options/funcgraph-proc", "0");
	put(TR "options/funcgraph-cpu", "0");
	put(TR "options/funcgraph-overhead", "0");
	put(TR "options/funcgraph-duration", "0");

	udp_scenarios();
	udp6_scenarios();
	tcp_scenarios();
	tcp6_scenarios();
	ping_raw_scenarios();
	packet_scenarios();
	unix_scenarios();

	say("@@ DONE\n");
	tcdrain(out);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
