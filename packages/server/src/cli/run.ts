import { main } from './main.js';

// Only set a code: long-running commands (serve) keep the process alive and exit themselves.
main(process.argv.slice(2)).then((code) => {
  if (code !== 0) process.exitCode = code;
});
