import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { scrollFocus } from './scrollFocus'
import './style.css'

createApp(App).use(router).directive('scroll-focus', scrollFocus).mount('#app')
