// ioredis (npm, pinned in package-lock.json) against cachette's RESP port, with its default
// options: since ioredis 6 that is RESP3 (HELLO 3, falling back to RESP2 on an error, which this
// checks did not happen), CLIENT SETINFO and CLIENT MAINT_NOTIFICATIONS (errors ignored), then
// its ready check: INFO, whose reply must hold `loading:0`.
//
//   node tests/clients/ioredis.js PORT [default|2]            the commands below; prints "ok"
//   node tests/clients/ioredis.js PORT [default|2] reconnect  prints "connected", then "ok" once
//                                                             the server was restarted and the
//                                                             client is back
//
// "2" asks for RESP2 (the option protocol: 2), ioredis 5's default.
//
// Run by tests/integration/test_resp_clients.c, which installs ioredis into build/node-clients.
'use strict';
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { check, step, next_ready } = require('./common');

const port = Number(process.argv[2]);
const options = process.argv[3] === '2' ? { protocol: 2 } : {};
const protocol = options.protocol || 3;
const mode = process.argv[4] || 'commands';
const p = `ioredis${protocol}:${process.pid}:`; // every key of this run, so runs can share a server

async function commands(r) {
    step('ping');
    assert.equal(await r.ping(), 'PONG');
    // What the ready check read: INFO as one bulk string, with a `loading:0` line.
    assert.match(await r.info(), /\r\nloading:0\r\n/);
    // The connection speaks what was asked: HELLO without a version answers with the current one.
    // (ioredis falls back to RESP2 silently when HELLO 3 fails.)
    const hello = await r.call('HELLO');
    assert.equal(hello[hello.indexOf('proto') + 1], protocol, `HELLO: ${hello}`);

    step('set/get/expire');
    assert.equal(await r.set(`${p}s`, 'v', 'EX', 100), 'OK');
    assert.equal(await r.get(`${p}s`), 'v');
    assert.equal(await r.get(`${p}absent`), null);
    const ttl = await r.ttl(`${p}s`);
    assert.ok(ttl >= 99 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await r.expire(`${p}s`, 50), 1);
    assert.equal(await r.ttl(`${p}s`), 50);
    assert.equal(await r.expire(`${p}absent`, 50), 0);
    assert.equal(await r.ttl(`${p}absent`), -2);

    step('incr');
    assert.equal(await r.incr(`${p}n`), 1);
    assert.equal(await r.incrby(`${p}n`, 9), 10);
    assert.equal(await r.get(`${p}n`), '10');

    step('mset/mget');
    assert.equal(await r.mset({ [`${p}m1`]: 'a', [`${p}m2`]: 'b' }), 'OK');
    assert.deepEqual(await r.mget(`${p}m1`, `${p}absent`, `${p}m2`), ['a', null, 'b']);

    step('scan');
    // SCAN: every key under the prefix, in pages, through ioredis's own iterator.
    const want = [];
    for (let i = 0; i < 50; i++) want.push(`${p}scan:${i}`);
    assert.equal(await r.mset(...want.flatMap((k) => [k, 'x'])), 'OK');
    const seen = new Set();
    for await (const keys of r.scanStream({ match: `${p}scan:*`, count: 10 })) keys.forEach((k) => seen.add(k));
    assert.deepEqual([...seen].sort(), [...want].sort());

    step('pipeline');
    // A pipeline of 100 commands: 50 SETs, then 50 GETs, in one write.
    const pipe = r.pipeline();
    for (let i = 0; i < 50; i++) pipe.set(`${p}pp${i}`, String(i));
    for (let i = 0; i < 50; i++) pipe.get(`${p}pp${i}`);
    const res = await pipe.exec();
    assert.equal(res.length, 100);
    res.forEach(([err, v], i) => {
        assert.equal(err, null);
        assert.equal(v, i < 50 ? 'OK' : String(i - 50));
    });

    step('del');
    assert.equal(await r.del(`${p}m1`, `${p}m2`, `${p}absent`), 2);
    assert.equal(await r.exists(`${p}m1`), 0);

    step('binary');
    // A value of bytes that are not text. (Keys must be UTF-8 text without NUL here, unlike
    // Redis's: a key of other bytes is refused.)
    const key = `${p}bin:\u00e9\u{1f511}`;
    const value = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0x00, 0xfe]);
    assert.equal(await r.set(key, value), 'OK');
    assert.deepEqual(await r.getBuffer(key), value);
    assert.equal(await r.strlen(key), value.length);
    assert.equal(await r.del(key), 1);
}

async function main() {
    const r = new Redis({ port, host: '127.0.0.1', ...options });
    r.on('error', (e) => console.log(`error event: ${e.message}`));
    step('connect');
    await next_ready(r); // once the ready check (INFO, loading:0) passed
    if (mode === 'reconnect') {
        assert.equal(await r.set(`${p}before`, '1'), 'OK');
        const back = new Promise((resolve) => r.once('close', resolve)).then(() => next_ready(r));
        console.log('connected');
        step('reconnect');
        await back; // ioredis reconnects by itself, ready check included
        assert.equal(await r.set(`${p}after`, '2'), 'OK');
        assert.equal(await r.get(`${p}after`), '2');
    } else {
        await commands(r);
    }
    await r.quit();
}

check(main);
