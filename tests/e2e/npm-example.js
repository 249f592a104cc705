// A web developer's use of the npm module, bundled by esbuild in the tests.
import { init } from 'salla-salesmanago-tracker';

const tracker = await init({ clientId: 'demo-client', endpoint: '/collect', location: 'store-npm', sendEmail: true });
tracker.track('Signed In', { email: 'noura@example.sa', event_id: 'npm-login' });
tracker.track('Product Added', { cart_id: 5, product_id: 'p-1', name: 'بخور', price: '99.90', quantity: 1, event_id: 'npm-add' });
window.result = { active: tracker.active, emptyAfterFlush: await tracker.flush(), identified: tracker.identify('not an email') };
