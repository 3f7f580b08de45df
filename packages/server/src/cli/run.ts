import { main } from './main.js';

// Long-running commands (serve, tail, listen) keep the process alive; the rest end when their work does.
main(process.argv.slice(2)).then((code) => {
  if (code !== 0) process.exitCode = code;
  // tail and listen end on Ctrl-C with sockets maybe still closing: do not wait for them.
  if (['tail', 'listen'].includes(process.argv[2] ?? '')) process.exit(process.exitCode ?? 0);
});
