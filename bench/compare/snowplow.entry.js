// Snowplow's browser tracker with its defaults (POST, one event per request, a localStorage
// queue), posting to the bench's local sink.
import { newTracker, trackSelfDescribingEvent } from '@snowplow/browser-tracker';

newTracker('sp', `${window.bench.sink}/snowplow`, { appId: 'bench' });

window.bench.track = (i) => {
  trackSelfDescribingEvent({
    event: { schema: `iglu:sa.salla/${window.bench.event === 'Product Viewed' ? 'product_viewed' : 'product_added'}/jsonschema/1-0-0`, data: window.bench.payload(i) },
  });
};
// newTracker is synchronous: the tracker takes events as soon as this script has run.
window.bench.markReady();
