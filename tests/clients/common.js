// What the client scripts share: a hard deadline that names the step it stopped in, and "ok"
// printed only when every assertion passed.
'use strict';

let current = 'start';

// Names the step a timeout or a failure is reported in.
function step(name) {
    current = name;
}

// Runs main; prints "ok" and exits 0 when it resolves within the deadline, or prints why and
// exits 1. The deadline (seconds) is $CLIENT_DEADLINE_S, 60 by default: the server may run under
// valgrind on a loaded machine.
function check(main) {
    const seconds = Number(process.env.CLIENT_DEADLINE_S || 60);
    const timer = setTimeout(() => {
        console.log(`timed out after ${seconds} s in step ${current}`);
        process.exit(1);
    }, seconds * 1000);
    main().then(
        () => {
            clearTimeout(timer);
            console.log('ok');
            process.exit(0);
        },
        (e) => {
            console.log(`failed in step ${current}: ${e && e.stack ? e.stack : e}`);
            process.exit(1);
        }
    );
}

// Resolves at the client's next 'ready' event.
function next_ready(client) {
    return new Promise((resolve) => client.once('ready', resolve));
}

module.exports = { check, step, next_ready };
