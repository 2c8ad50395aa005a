// plotly.js-dist-min is the prebuilt plotly.js bundle; its API is plotly.js's (types from @types/plotly.js).
declare module 'plotly.js-dist-min' {
  import * as Plotly from 'plotly.js';
  export = Plotly;
}
