// placeholder until the SDK recipe lands
export function sallaApi() { return { log: [], reset() {}, async handle() { return false; } }; }
