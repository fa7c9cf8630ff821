import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { scrollFocus } from './scrollFocus'
// uPlot's few rules ride with the stylesheet, not as one more file of the first page.
import 'uplot/dist/uPlot.min.css'
import './style.css'

createApp(App).use(router).directive('scroll-focus', scrollFocus).mount('#app')
