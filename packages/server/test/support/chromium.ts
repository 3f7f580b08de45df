// The browser every browser test drives: Debian's chromium (never a downloaded one), with the flags a headless run
// in a container needs and nothing that reaches out to the network on its own.
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
