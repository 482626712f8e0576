// node-redis against cachette's RESP port, with its default options, in the major version that
// NODE_PATH gives and the command line names:
// - 4: Debian's node-redis 4.5.1 (@redis/client 1.4.2, under /usr/share/nodejs). It sends nothing
//   on connect and speaks RESP2 only: its decoder has no RESP3 types, createClient no protocol
//   option.
// - 6: npm's, pinned in package-lock.json. RESP3 by default since node-redis 5: HELLO 3 first,
//   then CLIENT SETINFO (errors ignored).
//
//   node tests/clients/node-redis.js PORT 4|6            the commands below; prints "ok"
//   node tests/clients/node-redis.js PORT 4|6 reconnect  prints "connected", then "ok" once the
//                                                        server was restarted and the client is
//                                                        back
//
// Run by tests/integration/test_resp_clients.c, with one folder on NODE_PATH so that one
// version's @redis/client cannot stand in for the other's.
'use strict';
const assert = require('node:assert/strict');
const redis = require('redis');
const { check, step, next_ready } = require('./common');

const port = Number(process.argv[2]);
const major = Number(process.argv[3]);
const mode = process.argv[4] || 'commands';
const p = `node-redis-${major}:${process.pid}:`; // every key of this run, so runs can share a server
assert.equal(Number(require('redis/package.json').version.split('.')[0]), major);

// A GET whose reply comes as a Buffer: how to ask changed in node-redis 5.
function get_buffer(c, key) {
    return major < 5 ? c.get(redis.commandOptions({ returnBuffers: true }), key)
                     : c.withTypeMapping({ [redis.RESP_TYPES.BLOB_STRING]: Buffer }).get(key);
}

async function commands(c) {
    step('ping');
    assert.equal(await c.ping(), 'PONG');
    // HELLO without a version answers with the connection's: RESP3's map, or RESP2's flat array.
    const hello = await c.sendCommand(['HELLO']);
    assert.equal(Array.isArray(hello) ? hello[hello.indexOf('proto') + 1] : hello.proto, major < 5 ? 2 : 3);

    step('set/get/expire');
    assert.equal(await c.set(`${p}s`, 'v', { EX: 100 }), 'OK');
    assert.equal(await c.get(`${p}s`), 'v');
    assert.equal(await c.get(`${p}absent`), null);
    const ttl = await c.ttl(`${p}s`);
    assert.ok(ttl >= 99 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(Number(await c.expire(`${p}s`, 50)), 1); // node-redis 4 makes it a boolean
    assert.equal(await c.ttl(`${p}s`), 50);
    assert.equal(Number(await c.expire(`${p}absent`, 50)), 0);
    assert.equal(await c.ttl(`${p}absent`), -2);

    step('incr');
    assert.equal(await c.incr(`${p}n`), 1);
    assert.equal(await c.incrBy(`${p}n`, 9), 10);
    assert.equal(await c.get(`${p}n`), '10');

    step('mset/mget');
    assert.equal(await c.mSet({ [`${p}m1`]: 'a', [`${p}m2`]: 'b' }), 'OK');
    assert.deepEqual(await c.mGet([`${p}m1`, `${p}absent`, `${p}m2`]), ['a', null, 'b']);

    // SCAN: every key under the prefix through node-redis's own iterator (which yields keys one
    // by one in 4, a page at a time since 5), in pages of 10. Node-redis 4 reads the cursor as a
    // Number: cachette keeps its cursors below 2^53 so that none is rounded on the way back.
    step('scan');
    const want = [];
    for (let i = 0; i < 50; i++) want.push(`${p}scan:${i}`);
    assert.equal(await c.mSet(want.map((k) => [k, 'x'])), 'OK');
    const seen = new Set();
    for await (const keys of c.scanIterator({ MATCH: `${p}scan:*`, COUNT: 10 }))
        [].concat(keys).forEach((k) => seen.add(k));
    assert.deepEqual([...seen].sort(), [...want].sort());

    // A pipeline of 100 commands: 50 SETs, then 50 GETs, without MULTI (cachette has no
    // transactions). Then the same as 100 concurrent calls, which node-redis writes together.
    step('pipeline');
    const pipe = c.multi();
    for (let i = 0; i < 50; i++) pipe.set(`${p}pp${i}`, String(i));
    for (let i = 0; i < 50; i++) pipe.get(`${p}pp${i}`);
    const res = await pipe.execAsPipeline();
    assert.deepEqual(res, [...Array(50).fill('OK'), ...Array.from({ length: 50 }, (_, i) => String(i))]);
    const calls = [];
    for (let i = 0; i < 100; i++) calls.push(c.incr(`${p}auto`));
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 100 }, (_, i) => i + 1));

    step('del');
    assert.equal(await c.del([`${p}m1`, `${p}m2`, `${p}absent`]), 2);
    assert.equal(await c.exists(`${p}m1`), 0);

    // A value of bytes that are not text. (Keys must be UTF-8 text without NUL here, unlike
    // Redis's: a key of other bytes is refused.)
    step('binary');
    const key = `${p}bin:\u00e9\u{1f511}`;
    const value = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0x00, 0xfe]);
    assert.equal(await c.set(key, value), 'OK');
    assert.deepEqual(await get_buffer(c, key), value);
    assert.equal(await c.strLen(key), value.length);
    assert.equal(await c.del(key), 1);
}

async function main() {
    const c = redis.createClient({ socket: { port, host: '127.0.0.1' } });
    c.on('error', (e) => console.log(`error event: ${e.message}`));
    step('connect');
    await c.connect();
    if (mode === 'reconnect') {
        assert.equal(await c.set(`${p}before`, '1'), 'OK');
        const back = new Promise((resolve) => c.once('reconnecting', resolve)).then(() => next_ready(c));
        console.log('connected');
        step('reconnect');
        await back; // node-redis reconnects by itself
        assert.equal(await c.set(`${p}after`, '2'), 'OK');
        assert.equal(await c.get(`${p}after`), '2');
    } else {
        await commands(c);
    }
    await (major < 5 ? c.quit() : c.close());
}

check(main);
