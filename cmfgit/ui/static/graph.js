(function () { "use strict"; window.CMF.graph = {}; })();
