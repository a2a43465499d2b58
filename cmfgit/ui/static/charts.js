(function () { "use strict"; window.CMF.charts = {}; })();
